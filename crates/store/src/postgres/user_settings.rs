//! PostgreSQL: event-sourced user settings. The events live in the shared `events` table
//! (aggregate id = user id); this module reads them per user and keeps one snapshot per user.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::UserSettingsStore;
use integr8s_core::user_settings::SettingsSnapshot;
use integr8s_core::{EventType, StoreError, StoredEvent};

use super::query::{execute, fetch_all, sql_limit};
use super::{classify, PostgresStore};
use crate::codec::{col, col_json, to_json, ts};
use crate::rows::events::decode_event;

const SETTINGS_EVENT: EventType = EventType::UserSettingsUpdated;

#[async_trait]
impl UserSettingsStore for PostgresStore {
    async fn settings_snapshot(
        &self,
        user_id: &str,
    ) -> Result<Option<SettingsSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT last_seq, settings FROM user_settings_snapshots WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        row.map(|row| {
            Ok(SettingsSnapshot {
                settings: col_json(&row, "settings")?,
                last_seq: col(&row, "last_seq")?,
            })
        })
        .transpose()
    }

    async fn save_settings_snapshot(
        &self,
        snapshot: &SettingsSnapshot,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO user_settings_snapshots (user_id, last_seq, settings, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE
             SET last_seq = excluded.last_seq, settings = excluded.settings,
                 updated_at = excluded.updated_at
             WHERE excluded.last_seq > user_settings_snapshots.last_seq",
        )
        .bind(&snapshot.settings.user_id)
        .bind(snapshot.last_seq)
        .bind(to_json(&snapshot.settings)?)
        .bind(ts(integr8s_core::now()));
        Ok(execute(query, &self.pool).await? > 0)
    }

    async fn settings_events(
        &self,
        user_id: &str,
        after_seq: i64,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(
            "SELECT seq, body FROM events
             WHERE aggregate_id = $1 AND event_type = $2 AND seq > $3
               AND ($4::text IS NULL OR timestamp <= $4)
             ORDER BY seq",
        )
        .bind(user_id)
        .bind(SETTINGS_EVENT.as_str())
        .bind(after_seq)
        .bind(until.map(ts));
        fetch_all(query, &self.pool, decode_event).await
    }

    async fn recent_settings_events(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(
            "SELECT seq, body FROM events
             WHERE aggregate_id = $1 AND event_type = $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(SETTINGS_EVENT.as_str())
        .bind(sql_limit(limit));
        fetch_all(query, &self.pool, decode_event).await
    }
}
