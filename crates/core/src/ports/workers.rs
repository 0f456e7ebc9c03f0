//! The worker registry port: which worker instances are alive (a lease each, renewed by a
//! heartbeat), what they can run (their installed runtimes and their executor's health), and
//! which worker owns each running execution.
//!
//! A run is owned in two steps, both compare-and-set in the store:
//! 1. [`WorkerStore::claim_run`] moves the execution `scheduled → running` and records the
//!    worker as its owner (a redelivered command finds it running and is skipped);
//! 2. [`WorkerStore::mark_run_started`] records, just before the run is handed to the executor,
//!    that it may have started. It succeeds only while the worker still owns the execution, so
//!    a worker that lost its lease never starts a run that was handed to another.
//!
//! A run whose owner has no live lease is *lost*; [`WorkerStore::settle_run`] settles it once,
//! whoever asks: a run never marked started is scheduled again, a started one ends with an
//! outcome event stored in the same transaction.
//!
//! Lease times are the callers' clocks: the hosts of a deployment keep their clocks in sync
//! (NTP), well within a lease's length.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::event::{Envelope, StoredEvent};
use crate::ports::ExecutorHealth;

/// The versions of one language a worker can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeReport {
    pub lang: String,
    pub versions: Vec<String>,
}

/// What a worker tells the others with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker_id: String,
    /// Installed runtimes (only languages with at least one version).
    pub runtimes: Vec<RuntimeReport>,
    /// The executor's self-test.
    pub executor: ExecutorHealth,
}

/// A worker's lease as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLease {
    pub report: WorkerReport,
    /// When this worker id first took a lease (kept across renewals).
    pub started_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    /// The worker counts as alive until then.
    pub expires_at: DateTime<Utc>,
}

/// A running execution and the worker that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRun {
    pub execution_id: String,
    pub user_id: String,
    pub worker_id: String,
    /// The run was marked started ([`WorkerStore::mark_run_started`]): its script may have run.
    pub started: bool,
}

#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Takes or renews the lease of `report.worker_id` until `expires_at`, storing the report.
    async fn renew_lease(
        &self,
        report: &WorkerReport,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Gives the lease up (a worker that stops cleanly). Returns whether there was one.
    async fn drop_lease(&self, worker_id: &str) -> Result<bool, StoreError>;
    /// Leases not expired at `now`, oldest worker first.
    async fn live_workers(&self, now: DateTime<Utc>) -> Result<Vec<WorkerLease>, StoreError>;
    /// Forgets leases that expired before `before`. Returns how many.
    async fn prune_leases(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Moves the execution `scheduled → running` owned by `worker_id` (compare and set).
    /// Returns whether it moved.
    async fn claim_run(&self, execution_id: &str, worker_id: &str) -> Result<bool, StoreError>;
    /// Records that `worker_id` hands the run to its executor now; only while the execution is
    /// `running` and owned by `worker_id`. Returns whether it was recorded (false: do not run).
    async fn mark_run_started(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> Result<bool, StoreError>;
    /// The `running` executions owned by `worker_id`.
    async fn runs_of(&self, worker_id: &str) -> Result<Vec<OwnedRun>, StoreError>;
    /// `running` executions whose owner holds no lease live at `now`, at most `limit`.
    async fn lost_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OwnedRun>, StoreError>;
    /// Settles `run` once, in one transaction, if it is still `running`, owned by
    /// `run.worker_id` and `run.started` still holds:
    /// - not started: the execution goes back to `scheduled` without owner, and `event` (the
    ///   command that runs it again) is appended;
    /// - started: the execution keeps its status without owner, and `event` (its outcome) is
    ///   appended.
    ///
    /// Returns the stored event, or `None` when the run was settled by someone else or moved on.
    async fn settle_run(
        &self,
        run: &OwnedRun,
        event: &Envelope,
    ) -> Result<Option<StoredEvent>, StoreError>;
    /// The owner reports how its run ended, in one transaction, if the execution is still
    /// `running` and owned by `worker_id`: the execution keeps its status without owner and
    /// `events` (its outcome) are appended, in order. The same fence as
    /// [`WorkerStore::settle_run`]: of a run's outcome and its settlement as lost, exactly one
    /// is stored.
    ///
    /// Returns the stored events, or `None` when the run is no longer this worker's (settled as
    /// lost, or already reported).
    async fn report_run(
        &self,
        execution_id: &str,
        worker_id: &str,
        events: &[Envelope],
    ) -> Result<Option<Vec<StoredEvent>>, StoreError>;
}
