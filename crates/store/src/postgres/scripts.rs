//! PostgreSQL: saved scripts. Every read and write is scoped to the owner, so another user's
//! script looks the same as a missing one.

use async_trait::async_trait;
use integr8s_core::ports::{SavedScript, ScriptStore};
use integr8s_core::StoreError;

use super::query::{execute, fetch_all, fetch_optional};
use super::{classify, PostgresStore};
use crate::codec::{to_u64, ts};
use crate::rows::scripts::{decode, COLUMNS};

#[async_trait]
impl ScriptStore for PostgresStore {
    async fn create_script(&self, script: &SavedScript) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO saved_scripts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let query = sqlx::query(&sql)
            .bind(&script.script_id)
            .bind(&script.user_id)
            .bind(&script.name)
            .bind(&script.script)
            .bind(&script.lang)
            .bind(&script.lang_version)
            .bind(&script.description)
            .bind(ts(script.created_at))
            .bind(ts(script.updated_at));
        execute(query, &self.pool).await?;
        Ok(())
    }

    async fn script(
        &self,
        script_id: &str,
        user_id: &str,
    ) -> Result<Option<SavedScript>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM saved_scripts WHERE script_id = $1 AND user_id = $2");
        let query = sqlx::query(&sql).bind(script_id).bind(user_id);
        fetch_optional(query, &self.pool, decode).await
    }

    async fn list_scripts(&self, user_id: &str) -> Result<Vec<SavedScript>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM saved_scripts WHERE user_id = $1
             ORDER BY updated_at DESC, script_id"
        );
        fetch_all(sqlx::query(&sql).bind(user_id), &self.pool, decode).await
    }

    async fn list_scripts_page(
        &self,
        user_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<SavedScript>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM saved_scripts WHERE user_id = $1
             ORDER BY updated_at DESC, script_id LIMIT $2 OFFSET $3"
        );
        let query = sqlx::query(&sql)
            .bind(user_id)
            .bind(i64::from(limit))
            .bind(i64::from(offset));
        fetch_all(query, &self.pool, decode).await
    }

    async fn count_scripts(&self, user_id: &str) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM saved_scripts WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        to_u64(n, "script count")
    }

    async fn update_script(&self, script: &SavedScript) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE saved_scripts
             SET name = $1, script = $2, lang = $3, lang_version = $4, description = $5,
                 updated_at = $6
             WHERE script_id = $7 AND user_id = $8",
        )
        .bind(&script.name)
        .bind(&script.script)
        .bind(&script.lang)
        .bind(&script.lang_version)
        .bind(&script.description)
        .bind(ts(script.updated_at))
        .bind(&script.script_id)
        .bind(&script.user_id);
        Ok(execute(query, &self.pool).await? > 0)
    }

    async fn delete_script(&self, script_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let query = sqlx::query("DELETE FROM saved_scripts WHERE script_id = $1 AND user_id = $2")
            .bind(script_id)
            .bind(user_id);
        Ok(execute(query, &self.pool).await? > 0)
    }
}
