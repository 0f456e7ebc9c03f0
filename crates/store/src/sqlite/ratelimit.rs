//! SQLite: per-user rate-limit overrides, one row per user, kept until replaced or deleted.

use async_trait::async_trait;
use integr8s_core::ports::ratelimit::{RateLimitStore, UserRateLimit};
use integr8s_core::StoreError;

use super::query::{fetch_one, fetch_optional};
use super::{classify, SqliteStore};
use crate::codec::{to_json, ts};
use crate::rows::ratelimit::{decode, COLUMNS};

#[async_trait]
impl RateLimitStore for SqliteStore {
    async fn get_user_rate_limit(
        &self,
        user_id: &str,
    ) -> Result<Option<UserRateLimit>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM user_rate_limits WHERE user_id = ?");
        fetch_optional(sqlx::query(&sql).bind(user_id), &self.reader, decode).await
    }

    async fn put_user_rate_limit(
        &self,
        limit: &UserRateLimit,
    ) -> Result<UserRateLimit, StoreError> {
        let sql = format!(
            "INSERT INTO user_rate_limits ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(user_id) DO UPDATE SET bypass_rate_limit = excluded.bypass_rate_limit, \
             global_multiplier = excluded.global_multiplier, rules = excluded.rules, \
             notes = excluded.notes, updated_at = excluded.updated_at \
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(&limit.user_id)
            .bind(limit.bypass_rate_limit)
            .bind(limit.global_multiplier)
            .bind(to_json(&limit.rules)?)
            .bind(&limit.notes)
            .bind(ts(limit.created_at))
            .bind(ts(limit.updated_at));
        fetch_one(query, &self.writer, decode).await
    }

    async fn delete_user_rate_limit(&self, user_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM user_rate_limits WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }
}
