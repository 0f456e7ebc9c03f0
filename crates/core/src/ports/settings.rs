//! Store port: Event-sourced user settings.
//!
//! The `user_settings_updated` events in the event store are the source of truth (their
//! aggregate id is the user id); this port reads them per user and keeps snapshots, so that
//! the document is rebuilt from the latest snapshot plus the events after it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::event::StoredEvent;
use crate::user_settings::SettingsSnapshot;

#[async_trait]
pub trait UserSettingsStore: Send + Sync {
    /// The user's latest stored snapshot.
    async fn settings_snapshot(
        &self,
        user_id: &str,
    ) -> Result<Option<SettingsSnapshot>, StoreError>;
    /// Stores `snapshot` for its user unless one at the same or a later `last_seq` is stored
    /// already (snapshots never go backwards). Returns whether it was stored.
    async fn save_settings_snapshot(&self, snapshot: &SettingsSnapshot)
        -> Result<bool, StoreError>;
    /// The user's `user_settings_updated` events with `seq > after_seq` and, when `until` is
    /// set, a timestamp at or before it; ascending by `seq`.
    async fn settings_events(
        &self,
        user_id: &str,
        after_seq: i64,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The user's latest `limit` `user_settings_updated` events, newest first.
    async fn recent_settings_events(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
}
