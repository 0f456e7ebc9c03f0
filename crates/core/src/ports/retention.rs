//! Store port: retention. Old rows are deleted in bounded batches, and a named lease lets one
//! sweeper at a time do the work when several processes share the store.
//!
//! Every delete is idempotent (a row deleted twice is simply gone), so two sweeps that overlap
//! after a lease expired do no harm; the lease only keeps them from doing the same work twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// What a retention pass deletes, each with its own age limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionKind {
    /// Events of the log (and copies of events archived by an admin) stored before the cutoff.
    /// Audit events (see [`AUDIT_EVENT_TYPES`]) follow [`RetentionKind::Audit`] instead.
    Events,
    /// Finished executions (any terminal status) last updated before the cutoff, with their
    /// output, queue entry, saga and allocation.
    Executions,
    /// Notifications created before the cutoff, with their deliveries.
    Notifications,
    /// The system settings audit log and the sign-in audit events (`auth_failed`,
    /// `user_logged_in`, …) recorded before the cutoff.
    Audit,
    /// Replay sessions created before the cutoff that are finished or never started.
    ReplaySessions,
}

impl RetentionKind {
    pub const ALL: [RetentionKind; 5] = [
        Self::Events,
        Self::Executions,
        Self::Notifications,
        Self::Audit,
        Self::ReplaySessions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Executions => "executions",
            Self::Notifications => "notifications",
            Self::Audit => "audit",
            Self::ReplaySessions => "replay_sessions",
        }
    }
}

/// Event types that are audit records of sign-in and account activity: kept for the audit
/// retention rather than the event retention.
pub const AUDIT_EVENT_TYPES: [crate::EventType; 5] = [
    crate::EventType::AuthFailed,
    crate::EventType::UserLogin,
    crate::EventType::UserLoggedIn,
    crate::EventType::UserLoggedOut,
    crate::EventType::UserRegistered,
];

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes at most `batch` rows of `kind` older than `cutoff` and returns how many it
    /// deleted (fewer than `batch`: nothing older is left). Never deletes anything newer.
    async fn purge_before(
        &self,
        kind: RetentionKind,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError>;

    /// Takes or renews the lease `name` for `holder` until `until` when it is free, expired at
    /// `now`, or already held by `holder`. Returns whether `holder` holds it now.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}
