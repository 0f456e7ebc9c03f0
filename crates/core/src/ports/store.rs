//! The store port: users, executions, the event store (outbox and bus log), the execution queue,
//! sagas and resource allocations. Every method is safe to call concurrently from many tasks
//! and, for the networked adapters, from many processes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::event::{Envelope, EventType, StoredEvent};
use crate::execution::{
    Execution, ExecutionFilter, ExecutionResultRecord, ExecutionStatus, Priority,
};
use crate::ports::offsets::ConsumerOffsetStore;
use crate::saga::{Saga, SagaState};
use crate::user::{Role, User};

pub use super::admin::{EventQueryStore, SystemSettingsStore, UserAdminStore};
pub use super::capabilities::RoleCapabilities;
pub use super::dlq::DlqStore;
pub use super::notifications::NotificationStore;
pub use super::ratelimit::RateLimitStore;
pub use super::replay::ReplayStore;
pub use super::retention::RetentionStore;
pub use super::scripts::ScriptStore;
pub use super::settings::UserSettingsStore;
pub use super::workers::WorkerStore;

/// Data for a new user; the id is chosen by the caller.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub is_superuser: bool,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. `Conflict` names the taken field ("username" or "email").
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// Creates the user or, when the username exists, resets its email, password hash, role
    /// and superuser flag and re-activates it (used by `seed-users`).
    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError>;
}

/// The result of submitting an execution under an optional idempotency key.
// One value per submission; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateExecution {
    /// Stored together with its `execution_requested` event.
    Created(Execution, StoredEvent),
    /// An execution with the same (user, idempotency key) exists; nothing was stored.
    Existing(Execution),
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Stores a new execution and its request event in one transaction (the outbox). When
    /// `execution.idempotency_key` is set and the user already has an execution with that key,
    /// returns `Existing` and stores nothing.
    async fn create_execution(
        &self,
        execution: &Execution,
        requested: &Envelope,
    ) -> Result<CreateExecution, StoreError>;
    async fn execution(&self, execution_id: &str) -> Result<Option<Execution>, StoreError>;
    /// Lists executions, newest `created_at` first, with the total count before paging.
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<(Vec<Execution>, u64), StoreError>;
    /// Moves the execution to `to` only if its current status is one of `from` (compare and
    /// set). Returns whether it moved.
    async fn transition_execution(
        &self,
        execution_id: &str,
        from: &[ExecutionStatus],
        to: ExecutionStatus,
    ) -> Result<bool, StoreError>;
    /// Writes the final result if the execution is not terminal yet. Returns whether it was
    /// written (false: already terminal or unknown), so a redelivered outcome is a no-op.
    ///
    /// In the same transaction, and whether or not the result was written, it also frees what
    /// the execution held: its queue entry is removed (as [`QueueStore::release`]) and its
    /// active allocation is released (as [`AllocationStore::release_allocation`]).
    async fn finish_execution(
        &self,
        execution_id: &str,
        result: &ExecutionResultRecord,
    ) -> Result<bool, StoreError> {
        let written = self
            .finish_execution_with_events(execution_id, result, &[])
            .await?;
        Ok(written.is_some())
    }
    /// [`ExecutionStore::finish_execution`], and when it writes the result, appends `events`
    /// (as [`EventStore::append_events`] does) in the same transaction. `None` when the
    /// result was not written (nothing is appended then); else the stored events, for the
    /// caller to publish.
    async fn finish_execution_with_events(
        &self,
        execution_id: &str,
        result: &ExecutionResultRecord,
        events: &[Envelope],
    ) -> Result<Option<Vec<StoredEvent>>, StoreError>;
    /// Deletes an execution with its queue entry, saga and allocation. Returns whether it existed.
    async fn delete_execution(&self, execution_id: &str) -> Result<bool, StoreError>;
    /// Executions currently in one of `statuses` (used for recovery after a restart).
    async fn executions_in(
        &self,
        statuses: &[ExecutionStatus],
    ) -> Result<Vec<Execution>, StoreError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends one event. Appending an `event_id` that exists is a no-op returning the stored one.
    async fn append_event(&self, event: &Envelope) -> Result<StoredEvent, StoreError>;
    /// Appends several events in order, as [`EventStore::append_event`] does for each. Adapters
    /// override it to store them in one round trip; this default appends one at a time.
    async fn append_events(&self, events: &[Envelope]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            stored.push(self.append_event(event).await?);
        }
        Ok(stored)
    }
    /// Events of the given types with `seq > after`, in `seq` order, at most `limit`.
    async fn events_after(
        &self,
        types: &[EventType],
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Events of one aggregate (execution id), ascending; `types` empty means all types.
    async fn events_for_aggregate(
        &self,
        aggregate_id: &str,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The highest `seq` in the log (0 when empty).
    async fn last_seq(&self) -> Result<i64, StoreError>;
}

/// A queued execution.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub execution_id: String,
    pub user_id: String,
    pub priority: Priority,
    pub enqueued_at: DateTime<Utc>,
    /// Set when the entry holds an execution slot.
    pub active_since: Option<DateTime<Utc>>,
}

/// How the next queue entry is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuePolicy {
    /// Global concurrency: at most this many active entries.
    pub max_active: u32,
    /// At most this many active entries per user.
    pub max_active_per_user: u32,
    /// Every `ageing_seconds` of waiting raises an entry by one priority level, so low
    /// priorities cannot starve.
    pub ageing_seconds: u32,
}

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Adds a pending entry; adding an execution already queued is a no-op returning false.
    async fn enqueue(&self, entry: &QueueEntry) -> Result<bool, StoreError>;
    /// Atomically picks the best pending entry allowed by `policy` at `now` and marks it active.
    /// Best = highest effective priority (base rank minus waited/ageing_seconds), then oldest.
    async fn claim_next(
        &self,
        policy: &QueuePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError>;
    /// Removes the entry (pending or active), freeing its slot. Returns whether it existed.
    async fn release(&self, execution_id: &str) -> Result<bool, StoreError>;
    /// Removes the entry only while it is still pending. Returns whether it was removed.
    async fn remove_pending(&self, execution_id: &str) -> Result<bool, StoreError>;
    /// Active entries of executions still `queued` whose claim was taken before
    /// `claimed_before`: claims of a dispatch that stopped between its claim and the
    /// execution's `queued → scheduled` (a live dispatch does both within moments).
    async fn stale_claims(
        &self,
        claimed_before: DateTime<Utc>,
    ) -> Result<Vec<QueueEntry>, StoreError>;
    /// Moves a claimed execution from `queued` to `scheduled`, fenced by its claim: only while
    /// the entry is still the claim taken at `active_since` (the claim's token, as
    /// [`QueueStore::claim_next`] returned it), checked in the same transaction. A dispatch
    /// that stalled past the claim timeout finds its claim handed back (or taken again) and
    /// changes nothing. Scheduling consumes the token: the entry keeps its slot under a new
    /// `active_since`, so a stale hand-back of the old claim no longer matches.
    ///
    /// When the claim still stands but the execution is no longer `queued` (cancelled, say),
    /// the entry is removed in the same transaction, freeing the slot.
    async fn schedule_claimed(
        &self,
        execution_id: &str,
        active_since: DateTime<Utc>,
    ) -> Result<ScheduleClaim, StoreError> {
        let (outcome, _) = self
            .schedule_claimed_with_events(execution_id, active_since, &[])
            .await?;
        Ok(outcome)
    }
    /// [`QueueStore::schedule_claimed`], and when it schedules the execution, appends `events`
    /// (as [`EventStore::append_events`] does) in the same transaction; the stored events are
    /// returned for the caller to publish (none unless `Scheduled`).
    async fn schedule_claimed_with_events(
        &self,
        execution_id: &str,
        active_since: DateTime<Utc>,
        events: &[Envelope],
    ) -> Result<(ScheduleClaim, Vec<StoredEvent>), StoreError>;
    /// Hands a claim back to the pending entries, only if it is still the claim taken at
    /// `active_since` (compare and set). Returns whether it was handed back.
    async fn requeue_claim(
        &self,
        execution_id: &str,
        active_since: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// (pending, active) counts.
    async fn queue_counts(&self) -> Result<(u64, u64), StoreError>;
    /// Pending entries ahead of this one by the same ordering as `claim_next` (0 = next).
    async fn queue_position(
        &self,
        execution_id: &str,
        policy: &QueuePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;
    async fn set_priority(
        &self,
        execution_id: &str,
        priority: Priority,
    ) -> Result<bool, StoreError>;
}

/// What [`QueueStore::schedule_claimed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleClaim {
    /// The claim stood and the execution is now `scheduled`.
    Scheduled,
    /// The claim stood but the execution was no longer `queued`: its entry was removed.
    NotQueued,
    /// The claim is no longer this one (handed back, taken again, or released): nothing changed.
    ClaimLost,
}

/// The token a new claim gets when scheduling consumes `active_since`: later than both the
/// claim and `now`, so it never equals the token it replaces.
pub fn restamp_claim(active_since: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    now.max(active_since + chrono::Duration::microseconds(1))
}

#[derive(Debug, Clone, Default)]
pub struct SagaFilter {
    pub state: Option<SagaState>,
    pub execution_id: Option<String>,
    /// Only sagas of this user's executions.
    pub user_id: Option<String>,
    pub limit: u32,
    pub skip: u32,
}

#[async_trait]
pub trait SagaStore: Send + Sync {
    /// Returns the saga of (execution, saga name), creating `saga` if there is none (atomic).
    /// The bool says whether it was created now.
    async fn get_or_create_saga(&self, saga: &Saga) -> Result<(Saga, bool), StoreError>;
    /// Saves state, steps, context and error. Refuses (Conflict) to change a terminal saga.
    async fn save_saga(&self, saga: &Saga) -> Result<(), StoreError>;
    /// Saves the saga as [`SagaStore::save_saga`] does and appends `events` (as
    /// [`EventStore::append_events`] does) in one transaction: both or neither. The stored
    /// events are returned for the caller to publish.
    async fn save_saga_with_events(
        &self,
        saga: &Saga,
        events: &[Envelope],
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn saga(&self, saga_id: &str) -> Result<Option<Saga>, StoreError>;
    async fn saga_for_execution(&self, execution_id: &str) -> Result<Option<Saga>, StoreError>;
    async fn list_sagas(&self, filter: &SagaFilter) -> Result<(Vec<Saga>, u64), StoreError>;
}

#[async_trait]
pub trait AllocationStore: Send + Sync {
    /// Records an active allocation for the execution; idempotent. Returns the allocation id.
    async fn allocate(&self, execution_id: &str, lang: &str) -> Result<String, StoreError>;
    /// Marks the execution's allocation released; idempotent. Returns whether one was active.
    async fn release_allocation(&self, execution_id: &str) -> Result<bool, StoreError>;
    /// Active allocations for a language.
    async fn active_allocations(&self, lang: &str) -> Result<u64, StoreError>;
}

/// The whole store. Adapters implement the role traits; this is blanket-implemented.
pub trait Store:
    UserStore
    + ExecutionStore
    + EventStore
    + ConsumerOffsetStore
    + QueueStore
    + SagaStore
    + AllocationStore
    + ScriptStore
    + UserSettingsStore
    + NotificationStore
    + SystemSettingsStore
    + UserAdminStore
    + EventQueryStore
    + ReplayStore
    + DlqStore
    + RateLimitStore
    + WorkerStore
    + RetentionStore
    + RoleCapabilities
{
}

impl<T> Store for T where
    T: UserStore
        + ExecutionStore
        + EventStore
        + ConsumerOffsetStore
        + QueueStore
        + SagaStore
        + AllocationStore
        + ScriptStore
        + UserSettingsStore
        + NotificationStore
        + SystemSettingsStore
        + UserAdminStore
        + EventQueryStore
        + ReplayStore
        + DlqStore
        + RateLimitStore
        + WorkerStore
        + RetentionStore
{
}
