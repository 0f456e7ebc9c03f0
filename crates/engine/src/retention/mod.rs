//! The retention sweeper: every `interval` it deletes what is older than its kind's retention
//! (events, finished executions with their output, notifications, audit records, replay
//! sessions, dead-letter messages), in bounded batches so no pass holds the store for long.
//!
//! Several processes may run a sweeper over one store: a pass first takes the store's lease
//! [`LEASE`] (renewed between batches), so one sweep runs at a time; the deletes themselves are
//! idempotent, so a pass that overlaps another after a lease ran out does no harm.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use integr8s_core::ports::{RetentionKind, RetentionSweeperStore};
use tokio_util::sync::CancellationToken;

use crate::error::EngineError;

/// The name of the store lease a pass holds.
pub const LEASE: &str = "retention-sweep";

/// Settings of the sweeper.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Time between passes (the first runs at start).
    pub interval: Duration,
    /// Rows deleted per statement.
    pub batch: u32,
    /// Most batches of one kind per pass, so a large backlog is worked off over several passes.
    pub max_batches: u32,
    /// How long rows of each kind are kept; a kind without an entry is kept for ever.
    pub keep: BTreeMap<&'static str, Duration>,
}

impl RetentionConfig {
    pub fn keep(mut self, kind: RetentionKind, age: Option<Duration>) -> Self {
        match age {
            Some(age) => self.keep.insert(kind.as_str(), age),
            None => self.keep.remove(kind.as_str()),
        };
        self
    }

    fn age_of(&self, kind: RetentionKind) -> Option<Duration> {
        self.keep.get(kind.as_str()).copied()
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            batch: 500,
            max_batches: 200,
            keep: BTreeMap::new(),
        }
    }
}

/// What one pass deleted, by kind; `None` when another process held the lease.
pub type SweepPass = Option<BTreeMap<&'static str, u64>>;

/// Deletes old rows on a timer; see the module docs.
pub struct RetentionSweeper {
    store: Arc<dyn RetentionSweeperStore>,
    config: RetentionConfig,
    holder: String,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl RetentionSweeper {
    pub fn new(store: Arc<dyn RetentionSweeperStore>, config: RetentionConfig) -> Self {
        Self {
            store,
            config,
            holder: integr8s_core::new_id(),
        }
    }

    /// Runs a pass at start and then every `interval` until `shutdown`. A failed pass is logged
    /// and tried again on the next tick.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let mut interval = tokio::time::interval(self.config.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(interval = ?self.config.interval, keep = ?self.config.keep, "retention sweeper running");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            match self.sweep(integr8s_core::now()).await {
                Ok(Some(pass)) if pass.values().any(|n| *n > 0) => {
                    tracing::info!(?pass, "retention pass");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention pass failed"),
            }
        }
    }

    /// The lease lasts this long past each renewal: long enough for a batch.
    fn lease_time(&self) -> chrono::Duration {
        to_chrono(
            self.config
                .interval
                .min(Duration::from_secs(300))
                .max(Duration::from_secs(30)),
        )
    }

    async fn hold(&self) -> Result<bool, EngineError> {
        let now = integr8s_core::now();
        Ok(self
            .store
            .try_lease(LEASE, &self.holder, now, now + self.lease_time())
            .await?)
    }

    /// One pass with `now` as the present: for every kind with a retention, deletes rows older
    /// than `now` minus it.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepPass, EngineError> {
        if !self.hold().await? {
            tracing::debug!("retention: another process is sweeping");
            return Ok(None);
        }
        let result = self.sweep_held(now).await;
        if let Err(e) = self.store.release_lease(LEASE, &self.holder).await {
            tracing::warn!(error = %e, "retention: could not release the lease");
        }
        result.map(Some)
    }

    async fn sweep_held(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<&'static str, u64>, EngineError> {
        let mut pass = BTreeMap::new();
        for kind in RetentionKind::ALL {
            let Some(age) = self.config.age_of(kind) else {
                continue;
            };
            let Some(cutoff) = now.checked_sub_signed(to_chrono(age)) else {
                continue;
            };
            let mut deleted = 0;
            for _ in 0..self.config.max_batches.max(1) {
                if !self.hold().await? {
                    tracing::info!("retention: lease lost, the next pass goes on");
                    pass.insert(kind.as_str(), deleted);
                    return Ok(pass);
                }
                let n = self
                    .store
                    .purge_before(kind, cutoff, self.config.batch.max(1))
                    .await?;
                deleted += n;
                if n < u64::from(self.config.batch.max(1)) {
                    break;
                }
            }
            pass.insert(kind.as_str(), deleted);
        }
        Ok(pass)
    }
}
