//! Users: unique usernames and emails.

use async_trait::async_trait;
use integr8s_core::ports::{NewUser, UserStore};
use integr8s_core::user::User;
use integr8s_core::StoreError;

use super::query::{fetch_one, fetch_optional};
use super::{classify, SqliteStore};
use crate::codec::{to_u64, ts};
use crate::rows::users::{decode, COLUMNS};

impl SqliteStore {
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = ?");
        fetch_optional(sqlx::query(&sql).bind(value), &self.reader, decode).await
    }

    /// Runs an `INSERT … RETURNING` of `user` (active, created and updated now).
    async fn insert_user(&self, sql: &str, user: &NewUser) -> Result<User, StoreError> {
        let now = ts(integr8s_core::now());
        let query = sqlx::query(sql)
            .bind(&user.user_id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.is_superuser)
            .bind(&now)
            .bind(&now);
        fetch_one(query, &self.writer, decode).await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING {COLUMNS}"
        );
        self.insert_user(&sql, user).await
    }

    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.user_where("user_id", user_id).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username", username).await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await
            .map_err(classify)?;
        to_u64(n, "user count")
    }

    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
             ON CONFLICT (username) DO UPDATE SET
                 email = excluded.email,
                 password_hash = excluded.password_hash,
                 role = excluded.role,
                 is_superuser = excluded.is_superuser,
                 is_active = 1,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        self.insert_user(&sql, user).await
    }
}
