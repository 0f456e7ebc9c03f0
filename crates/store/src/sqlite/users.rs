//! Users: unique usernames and emails.

use async_trait::async_trait;
use integr8s_core::ports::{NewUser, UserStore};
use integr8s_core::user::{Role, User};
use integr8s_core::StoreError;
use sqlx::sqlite::SqliteRow;

use super::codec::{col, col_enum, col_ts, ts};
use super::{classify, SqliteStore};

pub(crate) const COLUMNS: &str =
    "user_id, username, email, password_hash, role, is_active, is_superuser, \
                       created_at, updated_at";

pub(crate) fn decode(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        user_id: col(row, "user_id")?,
        username: col(row, "username")?,
        email: col(row, "email")?,
        password_hash: col(row, "password_hash")?,
        role: col_enum(row, "role", Role::parse)?,
        is_active: col(row, "is_active")?,
        is_superuser: col(row, "is_superuser")?,
        created_at: col_ts(row, "created_at")?,
        updated_at: col_ts(row, "updated_at")?,
    })
}

impl SqliteStore {
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = ?");
        sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.reader)
            .await
            .map_err(classify)?
            .as_ref()
            .map(decode)
            .transpose()
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let now = ts(integr8s_core::now());
        let sql = format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&user.user_id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.is_superuser)
            .bind(&now)
            .bind(&now)
            .fetch_one(&self.writer)
            .await
            .map_err(classify)?;
        decode(&row)
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
        super::codec::to_u64(n, "user count")
    }

    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let now = ts(integr8s_core::now());
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
        let row = sqlx::query(&sql)
            .bind(&user.user_id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(user.is_superuser)
            .bind(&now)
            .bind(&now)
            .fetch_one(&self.writer)
            .await
            .map_err(classify)?;
        decode(&row)
    }
}
