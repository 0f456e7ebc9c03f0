//! PostgreSQL: the system settings document (one row) and its append-only audit log.

use async_trait::async_trait;
use integr8s_core::ports::SystemSettingsStore;
use integr8s_core::system_settings::{SettingsAuditEntry, SystemSettings};
use integr8s_core::StoreError;
use sqlx::PgConnection;

use super::query::{execute, Page};
use super::{classify, PostgresStore};
use crate::codec::{to_json, ts};
use crate::rows::system_settings::decode_audit;

/// The id of the single settings row.
const GLOBAL: &str = "global";

async fn append_audit(
    conn: &mut PgConnection,
    audit: &SettingsAuditEntry,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "INSERT INTO settings_audit_log
             (audit_id, action, user_id, username, timestamp, old_values, new_values)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&audit.audit_id)
    .bind(audit.action.as_str())
    .bind(&audit.user_id)
    .bind(&audit.username)
    .bind(ts(audit.timestamp))
    .bind(to_json(&audit.old_values)?)
    .bind(to_json(&audit.new_values)?);
    execute(query, conn).await?;
    Ok(())
}

#[async_trait]
impl SystemSettingsStore for PostgresStore {
    async fn system_settings(&self) -> Result<Option<SystemSettings>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM system_settings WHERE settings_id = $1")
                .bind(GLOBAL)
                .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
        let save = sqlx::query(
            "INSERT INTO system_settings (settings_id, body, updated_at, updated_by)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (settings_id) DO UPDATE SET
                 body = excluded.body,
                 updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
        )
        .bind(GLOBAL)
        .bind(to_json(settings)?)
        .bind(ts(audit.timestamp))
        .bind(&audit.user_id);
        execute(save, &mut *tx).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(classify)
    }

    async fn reset_system_settings(&self, audit: &SettingsAuditEntry) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let reset = sqlx::query("DELETE FROM system_settings WHERE settings_id = $1").bind(GLOBAL);
        execute(reset, &mut *tx).await?;
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
        page.fetch(&self.pool, |_| {}, decode_audit).await
    }
}
