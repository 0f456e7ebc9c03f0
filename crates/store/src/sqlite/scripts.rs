//! SQLite: saved scripts. Every read and write is scoped to the owner, so another user's script
//! looks the same as a missing one.

use async_trait::async_trait;
use integr8s_core::ports::{SavedScript, ScriptStore};
use integr8s_core::StoreError;

use super::query::{fetch_all, fetch_optional};
use super::{classify, SqliteStore};
use crate::codec::{to_u64, ts};
use crate::rows::scripts::{decode, COLUMNS};

#[async_trait]
impl ScriptStore for SqliteStore {
    async fn create_script(&self, script: &SavedScript) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO saved_scripts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&script.script_id)
        .bind(&script.user_id)
        .bind(&script.name)
        .bind(&script.script)
        .bind(&script.lang)
        .bind(&script.lang_version)
        .bind(&script.description)
        .bind(ts(script.created_at))
        .bind(ts(script.updated_at))
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn script(
        &self,
        script_id: &str,
        user_id: &str,
    ) -> Result<Option<SavedScript>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM saved_scripts WHERE script_id = ? AND user_id = ?");
        let query = sqlx::query(&sql).bind(script_id).bind(user_id);
        fetch_optional(query, &self.reader, decode).await
    }

    async fn list_scripts(&self, user_id: &str) -> Result<Vec<SavedScript>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM saved_scripts WHERE user_id = ?
             ORDER BY updated_at DESC, script_id"
        );
        fetch_all(sqlx::query(&sql).bind(user_id), &self.reader, decode).await
    }

    async fn list_scripts_page(
        &self,
        user_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<SavedScript>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM saved_scripts WHERE user_id = ?
             ORDER BY updated_at DESC, script_id LIMIT ? OFFSET ?"
        );
        let query = sqlx::query(&sql)
            .bind(user_id)
            .bind(i64::from(limit))
            .bind(i64::from(offset));
        fetch_all(query, &self.reader, decode).await
    }

    async fn count_scripts(&self, user_id: &str) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM saved_scripts WHERE user_id = ?")
            .bind(user_id)
            .fetch_one(&self.reader)
            .await
            .map_err(classify)?;
        to_u64(n, "script count")
    }

    async fn update_script(&self, script: &SavedScript) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE saved_scripts
             SET name = ?, script = ?, lang = ?, lang_version = ?, description = ?, updated_at = ?
             WHERE script_id = ? AND user_id = ?",
        )
        .bind(&script.name)
        .bind(&script.script)
        .bind(&script.lang)
        .bind(&script.lang_version)
        .bind(&script.description)
        .bind(ts(script.updated_at))
        .bind(&script.script_id)
        .bind(&script.user_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_script(&self, script_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM saved_scripts WHERE script_id = ? AND user_id = ?")
            .bind(script_id)
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }
}
