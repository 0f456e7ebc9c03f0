//! Store port: replay sessions, and the event selection they replay.
//!
//! Sessions live in the store (not in a process), so every API process sees the same sessions
//! and a replay survives a restart: the runner persists its progress and a cursor, and a
//! resumed or re-claimed session continues after the last replayed event.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::event::{Envelope, EventType, StoredEvent};

/// Prefix of `metadata.correlation_id` on events re-published by a replay:
/// `replay:<session_id>:<original event_id>`. Pipeline consumers skip such events, so a replay
/// never runs an execution again.
pub const REPLAY_CORRELATION_PREFIX: &str = "replay:";

/// Whether `envelope` is a copy published by a replay session.
pub fn is_replayed(envelope: &Envelope) -> bool {
    envelope
        .metadata
        .correlation_id
        .as_deref()
        .is_some_and(|c| c.starts_with(REPLAY_CORRELATION_PREFIX))
}

/// The provenance marker of an event replayed by `session_id`.
pub fn replay_correlation(session_id: &str, original_event_id: &str) -> String {
    format!("{REPLAY_CORRELATION_PREFIX}{session_id}:{original_event_id}")
}

/// The contract's `ReplayType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayType {
    Execution,
    TimeRange,
    EventType,
    Query,
    Recovery,
}

/// The contract's `ReplayTarget`: `kafka` is our event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayTarget {
    Kafka,
    Callback,
    File,
    Test,
}

/// The contract's `ReplayStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    Preview,
    Scheduled,
    Created,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl ReplayStatus {
    pub const ALL: [ReplayStatus; 8] = [
        ReplayStatus::Preview,
        ReplayStatus::Scheduled,
        ReplayStatus::Created,
        ReplayStatus::Running,
        ReplayStatus::Paused,
        ReplayStatus::Completed,
        ReplayStatus::Failed,
        ReplayStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplayStatus::Preview => "preview",
            ReplayStatus::Scheduled => "scheduled",
            ReplayStatus::Created => "created",
            ReplayStatus::Running => "running",
            ReplayStatus::Paused => "paused",
            ReplayStatus::Completed => "completed",
            ReplayStatus::Failed => "failed",
            ReplayStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ReplayStatus::Completed | ReplayStatus::Failed | ReplayStatus::Cancelled
        )
    }
}

/// Which events a session replays (the contract's `ReplayFilter`); every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReplayFilter {
    #[serde(default)]
    pub event_ids: Option<Vec<String>>,
    /// The execution the event belongs to (its aggregate id).
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub aggregate_id: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<EventType>>,
    #[serde(default)]
    pub exclude_event_types: Option<Vec<EventType>>,
    /// Inclusive bounds on the event's `timestamp`.
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// `metadata.user_id`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// `metadata.service_name`.
    #[serde(default)]
    pub service_name: Option<String>,
}

impl ReplayFilter {
    /// Whether no criterion is set (the filter would select every event).
    pub fn is_empty(&self) -> bool {
        self.event_ids.as_ref().is_none_or(Vec::is_empty)
            && self.execution_id.is_none()
            && self.aggregate_id.is_none()
            && self.event_types.as_ref().is_none_or(Vec::is_empty)
            && self.exclude_event_types.as_ref().is_none_or(Vec::is_empty)
            && self.start_time.is_none()
            && self.end_time.is_none()
            && self.user_id.is_none()
            && self.service_name.is_none()
    }
}

/// A session's configuration (the contract's `ReplayConfigSchema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReplayConfig {
    pub replay_type: ReplayType,
    pub target: ReplayTarget,
    pub filter: ReplayFilter,
    /// Inter-event delay = original gap / multiplier; no delay at 100 or more.
    pub speed_multiplier: f64,
    /// Keep the original timestamps on re-published events (otherwise: now).
    pub preserve_timestamps: bool,
    pub batch_size: u32,
    pub max_events: Option<u64>,
    pub target_topics: Option<BTreeMap<String, String>>,
    /// For the `file` target: a path relative to the server's replay directory.
    pub target_file_path: Option<String>,
    /// Keep going after an event failed (otherwise the session fails).
    pub skip_errors: bool,
    pub retry_failed: bool,
    pub retry_attempts: u32,
    pub enable_progress_tracking: bool,
}

/// One failure recorded by a session (the contract's `ReplayError`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReplayError {
    pub timestamp: DateTime<Utc>,
    pub error: String,
    pub error_type: Option<String>,
    pub event_id: Option<String>,
}

/// Where the runner is in the selection: after this (timestamp, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayCursor {
    pub timestamp: DateTime<Utc>,
    pub seq: i64,
}

/// A stored replay session.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySession {
    pub session_id: String,
    /// `replay-<hex>` for sessions made by the admin replay endpoint, else the session id.
    pub replay_id: String,
    pub config: ReplayConfig,
    pub status: ReplayStatus,
    pub total_events: u64,
    pub replayed_events: u64,
    pub failed_events: u64,
    pub skipped_events: u64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub errors: Vec<ReplayError>,
    pub created_by: Option<String>,
    pub cursor: Option<ReplayCursor>,
}

impl ReplaySession {
    /// A new session in `created` state.
    pub fn new(config: ReplayConfig, created_by: Option<String>) -> Self {
        let session_id = crate::new_id();
        Self {
            replay_id: session_id.clone(),
            session_id,
            config,
            status: ReplayStatus::Created,
            total_events: 0,
            replayed_events: 0,
            failed_events: 0,
            skipped_events: 0,
            created_at: crate::now(),
            started_at: None,
            completed_at: None,
            last_event_at: None,
            errors: Vec::new(),
            created_by,
            cursor: None,
        }
    }

    /// Events handled so far, whatever the outcome.
    pub fn processed_events(&self) -> u64 {
        self.replayed_events + self.failed_events + self.skipped_events
    }
}

/// The runner's progress, written after each event.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayProgress {
    pub replayed_events: u64,
    pub failed_events: u64,
    pub skipped_events: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    pub errors: Vec<ReplayError>,
    pub cursor: Option<ReplayCursor>,
}

/// Most errors kept per session.
pub const MAX_SESSION_ERRORS: usize = 100;

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Stores a new session. `Conflict` if the id exists.
    async fn create_replay_session(&self, session: &ReplaySession) -> Result<(), StoreError>;

    async fn replay_session(&self, session_id: &str) -> Result<Option<ReplaySession>, StoreError>;

    /// Sessions, newest first, optionally of one status; `limit` 0 means no limit.
    async fn list_replay_sessions(
        &self,
        status: Option<ReplayStatus>,
        limit: u32,
    ) -> Result<Vec<ReplaySession>, StoreError>;

    /// Moves the session to `to` only if its status is one of `from` (compare and set); sets
    /// `started_at` on the first move to `running` and `completed_at` on a terminal `to`.
    /// `total_events`, when given, is stored too. Returns whether it moved.
    async fn transition_replay_session(
        &self,
        session_id: &str,
        from: &[ReplayStatus],
        to: ReplayStatus,
        total_events: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Writes the runner's counters, errors and cursor (the status is left alone). Returns
    /// whether the session exists.
    async fn save_replay_progress(
        &self,
        session_id: &str,
        progress: &ReplayProgress,
    ) -> Result<bool, StoreError>;

    /// Claims one `running` session nobody holds (its lease is unset or expired before `now`)
    /// and leases it until `lease_until`.
    async fn claim_replay_session(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ReplaySession>, StoreError>;

    /// Extends (`Some`) or releases (`None`) the runner's lease on a session.
    async fn lease_replay_session(
        &self,
        session_id: &str,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Deletes sessions created before `cutoff` that are terminal or never started (`created`).
    /// Returns how many.
    async fn delete_replay_sessions_before(&self, cutoff: DateTime<Utc>)
        -> Result<u64, StoreError>;

    /// Events matching `filter` after `after`, in (timestamp, seq) order, at most `limit`
    /// (0: no limit). Events published by a replay ([`is_replayed`]) are never selected, so a
    /// replay cannot feed on its own copies.
    async fn replay_events(
        &self,
        filter: &ReplayFilter,
        after: Option<ReplayCursor>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// How many events [`ReplayStore::replay_events`] would select.
    async fn count_replay_events(&self, filter: &ReplayFilter) -> Result<u64, StoreError>;
}
