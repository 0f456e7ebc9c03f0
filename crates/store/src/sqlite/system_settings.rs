//! The system settings document (one row) and its append-only audit log.

use async_trait::async_trait;
use integr8s_core::ports::SystemSettingsStore;
use integr8s_core::system_settings::{SettingsAuditEntry, SystemSettings};
use integr8s_core::StoreError;
use sqlx::SqliteConnection;

use super::query::Page;
use super::{classify, SqliteStore};
use crate::codec::{to_json, ts};
use crate::rows::system_settings::decode_audit;

/// The id of the single settings row.
const GLOBAL: &str = "global";

async fn append_audit(
    conn: &mut SqliteConnection,
    audit: &SettingsAuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings_audit_log
             (audit_id, action, user_id, username, timestamp, old_values, new_values)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&audit.audit_id)
    .bind(audit.action.as_str())
    .bind(&audit.user_id)
    .bind(&audit.username)
    .bind(ts(audit.timestamp))
    .bind(to_json(&audit.old_values)?)
    .bind(to_json(&audit.new_values)?)
    .execute(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(())
}

#[async_trait]
impl SystemSettingsStore for SqliteStore {
    async fn system_settings(&self) -> Result<Option<SystemSettings>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM system_settings WHERE settings_id = ?")
                .bind(GLOBAL)
                .fetch_optional(&self.reader)
                .await
                .map_err(classify)?;
        body.map(|b| {
            serde_json::from_str(&b)
                .map_err(|e| StoreError::Corrupt(format!("system settings: {e}")))
        })
        .transpose()
    }

    async fn save_system_settings(
        &self,
        settings: &SystemSettings,
        audit: &SettingsAuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO system_settings (settings_id, body, updated_at, updated_by)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (settings_id) DO UPDATE SET
                 body = excluded.body,
                 updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
        )
        .bind(GLOBAL)
        .bind(to_json(settings)?)
        .bind(ts(audit.timestamp))
        .bind(&audit.user_id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(classify)
    }

    async fn reset_system_settings(&self, audit: &SettingsAuditEntry) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM system_settings WHERE settings_id = ?")
            .bind(GLOBAL)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(classify)
    }

    async fn settings_audit_log(
        &self,
        limit: u32,
        skip: u32,
    ) -> Result<(Vec<SettingsAuditEntry>, u64), StoreError> {
        let page = Page {
            table: "settings_audit_log",
            columns: "audit_id, action, user_id, username, timestamp, old_values, new_values",
            order_by: "seq DESC",
            limit,
            skip,
        };
        page.fetch(&self.reader, |_| {}, decode_audit).await
    }
}
