//! Store port: admin views: system settings and audit log, user administration, event queries.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::event::{EventType, StoredEvent};
use crate::execution::{Execution, ExecutionStatus, Priority};
use crate::system_settings::{SettingsAuditEntry, SystemSettings};
use crate::user::{Role, User};

/// The stored system settings document and its audit log.
#[async_trait]
pub trait SystemSettingsStore: Send + Sync {
    /// The stored settings, or `None` when none are stored (the configuration's defaults apply).
    /// Cheap enough to call on every request: callers do not cache it.
    async fn system_settings(&self) -> Result<Option<SystemSettings>, StoreError>;
    /// Replaces the stored settings and appends `audit`, in one transaction.
    async fn save_system_settings(
        &self,
        settings: &SystemSettings,
        audit: &SettingsAuditEntry,
    ) -> Result<(), StoreError>;
    /// Deletes the stored settings (back to the defaults) and appends `audit`, in one
    /// transaction. Resetting when nothing is stored still records the entry.
    async fn reset_system_settings(&self, audit: &SettingsAuditEntry) -> Result<(), StoreError>;
    /// Audit entries, newest first, with the total count before paging (`limit` 0 = all).
    async fn settings_audit_log(
        &self,
        limit: u32,
        skip: u32,
    ) -> Result<(Vec<SettingsAuditEntry>, u64), StoreError>;
}

/// Filters and paging for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserListFilter {
    /// Case-insensitive substring of the username or the email (taken literally: `%` and `_`
    /// match themselves).
    pub search: Option<String>,
    pub role: Option<Role>,
    pub limit: u32,
    pub offset: u32,
}

/// A partial update of a user; `None` leaves the field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub password_hash: Option<String>,
}

/// What deleting a user removed (the contract's `DeleteUserResponse` counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserDeletion {
    pub executions: u64,
    pub saved_scripts: u64,
    pub notifications: u64,
    pub user_settings: u64,
    pub events: u64,
    pub sagas: u64,
}

/// User administration beyond `UserStore`.
#[async_trait]
pub trait UserAdminStore: Send + Sync {
    /// Users ordered by creation (oldest first), with the total matching count before paging.
    async fn list_users(&self, filter: &UserListFilter) -> Result<(Vec<User>, u64), StoreError>;
    /// Applies `update` and bumps `updated_at`. `Ok(None)` for an unknown user; `Conflict`
    /// names the taken field ("username" or "email").
    async fn update_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
    ) -> Result<Option<User>, StoreError>;
    /// Deletes the user. With `cascade`, also deletes in the same transaction everything it
    /// owns: executions with their queue entries, sagas and allocations; events it emitted or
    /// that belong to its executions; saved scripts, notifications and settings. `Ok(None)`
    /// for an unknown user. Without `cascade` only the account goes and the counts are zero.
    async fn delete_user(
        &self,
        user_id: &str,
        cascade: bool,
    ) -> Result<Option<UserDeletion>, StoreError>;
    /// Changes the stored priority of an execution (the queue is reordered separately, with
    /// `QueueStore::set_priority`). `Ok(None)` for an unknown execution.
    async fn set_execution_priority(
        &self,
        execution_id: &str,
        priority: Priority,
    ) -> Result<Option<Execution>, StoreError>;
    /// Number of executions of the user per status (statuses without any are absent).
    async fn execution_status_counts(
        &self,
        user_id: &str,
    ) -> Result<HashMap<ExecutionStatus, u64>, StoreError>;
}

/// Conditions on events; every set field must hold.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Any of these types; empty means all.
    pub event_types: Vec<EventType>,
    pub aggregate_id: Option<String>,
    /// The `metadata.user_id` of the event.
    pub user_id: Option<String>,
    /// The `metadata.service_name` of the event.
    pub service_name: Option<String>,
    /// Inclusive bounds on the event timestamp.
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the type, aggregate id, user id or serialized body.
    pub search_text: Option<String>,
}

/// A position in the newest-first event order, for keyset paging of long exports.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCursor {
    pub timestamp: DateTime<Utc>,
    pub seq: i64,
}

impl EventCursor {
    /// The cursor just past `event`.
    pub fn after(event: &StoredEvent) -> Self {
        Self {
            timestamp: event.envelope.timestamp,
            seq: event.seq,
        }
    }
}

/// A count per key, largest first.
pub type Counts = Vec<(String, u64)>;

/// Aggregates over the events of a time window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventStats {
    pub total_events: u64,
    /// The ten most frequent types.
    pub events_by_type: Counts,
    /// Events per hour `YYYY-MM-DD HH:00` (UTC), oldest first.
    pub events_by_hour: Counts,
    pub events_by_service: Counts,
    /// The ten users with most events (events without a user are not counted).
    pub top_users: Counts,
    /// Percentage (0..=100, two decimals) of events whose type names a failure, error or timeout.
    pub error_rate: f64,
    /// Mean wall time, seconds, of the executions completed in the window (0 when none).
    pub avg_processing_time: f64,
}

/// Reading and removing events for administration (the log itself is `EventStore`).
#[async_trait]
pub trait EventQueryStore: Send + Sync {
    /// Matching events, newest first (timestamp, then log position): those strictly after
    /// `after` when given, then `skip` more are skipped and at most `limit` returned
    /// (`limit` 0 = all).
    async fn query_events(
        &self,
        query: &EventQuery,
        after: Option<&EventCursor>,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn count_events(&self, query: &EventQuery) -> Result<u64, StoreError>;
    async fn event_by_id(&self, event_id: &str) -> Result<Option<StoredEvent>, StoreError>;
    /// Statistics over the events at or after `since`; only one user's events when `user_id`
    /// is given.
    async fn event_stats(
        &self,
        since: DateTime<Utc>,
        user_id: Option<&str>,
    ) -> Result<EventStats, StoreError>;
    /// Copies the event into the archive (with who deleted it and when) and removes it from the
    /// log, in one transaction. Returns whether it existed.
    async fn archive_and_delete_event(
        &self,
        event_id: &str,
        deleted_by: &str,
    ) -> Result<bool, StoreError>;
    /// Number of archived copies of `event_id` (0 or 1).
    async fn archived_event_count(&self, event_id: &str) -> Result<u64, StoreError>;
}
