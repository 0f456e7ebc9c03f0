//! PostgreSQL: users, with unique usernames and emails.

use async_trait::async_trait;
use integr8s_core::ports::{NewUser, UserStore};
use integr8s_core::user::User;
use integr8s_core::StoreError;

use super::query::{fetch_one, fetch_optional};
use super::{classify, PostgresStore};
use crate::codec::{to_u64, ts};
use crate::rows::users::{decode, COLUMNS};

impl PostgresStore {
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = $1");
        fetch_optional(sqlx::query(&sql).bind(value), &self.pool, decode).await
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
        fetch_one(query, &self.pool, decode).await
    }
}

const INSERT: &str = "INSERT INTO users (user_id, username, email, password_hash, role, \
     is_active, is_superuser, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8)";

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let sql = format!("{INSERT} RETURNING {COLUMNS}");
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
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        to_u64(n, "user count")
    }

    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let sql = format!(
            "{INSERT}
             ON CONFLICT (username) DO UPDATE SET
                 email = excluded.email,
                 password_hash = excluded.password_hash,
                 role = excluded.role,
                 is_superuser = excluded.is_superuser,
                 is_active = TRUE,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        self.insert_user(&sql, user).await
    }
}
