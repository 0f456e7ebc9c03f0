//! The worker's lease and what happens to runs whose owner is gone.
//!
//! Every `heartbeat` the worker renews its lease (with its report: installed runtimes and the
//! executor's health), stops live runs the store no longer says it owns, and settles the runs
//! of workers whose lease expired. Any live worker sweeps; the store's compare-and-set lets one
//! settlement win per run, however many sweep at once ([`WorkerStore::settle_run`]):
//! - a run never marked started is scheduled again: its run command is stored anew (or, when a
//!   cancel was asked for it, its `execution_cancelled`), in the same transaction;
//! - a started run ends as `error` (`system_error`, "worker lost"): its `execution_failed` is
//!   stored in the same transaction, and the result processor frees its queue slot and
//!   allocation as for any outcome. It is never run again.
//!
//! A worker started again under the same id settles its own runs at once, the same way
//! ("interrupted by a service restart").
//!
//! [`WorkerStore::settle_run`]: integr8s_core::ports::WorkerStore::settle_run

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use integr8s_core::error::StoreError;
use integr8s_core::event::{Envelope, EventType};
use integr8s_core::ports::{OwnedRun, RuntimeReport, WorkerReport};
use tokio_util::sync::CancellationToken;

use super::outcome::{cancelled_before_start, system_failure, CancelRequest};
use super::{lock, Inner, RESTART_MESSAGE};
use crate::error::EngineError;

/// Lost runs settled per heartbeat.
const SWEEP_BATCH: u32 = 100;
/// Leases that expired this long ago are forgotten (their runs were settled long before).
const FORGET_LEASES_AFTER: Duration = Duration::from_secs(3600);
/// Heartbeats between two clean-ups of forgotten leases.
const PRUNE_EVERY: u32 = 20;
/// Command events read to settle a run that never started.
const HISTORY_LIMIT: u32 = 1000;

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The message of a run settled because its worker is gone.
fn lost_message(worker_id: &str) -> String {
    format!("worker lost: worker {worker_id} stopped renewing its lease during the run")
}

impl Inner {
    /// What this worker tells the others: its installed runtimes and its executor's health.
    fn report(&self) -> WorkerReport {
        let runtimes = self
            .registry
            .runtimes()
            .iter()
            .filter_map(|r| {
                let versions: Vec<String> = r
                    .versions
                    .iter()
                    .filter(|v| v.available)
                    .map(|v| v.version.clone())
                    .collect();
                (!versions.is_empty()).then(|| RuntimeReport {
                    lang: r.lang.clone(),
                    versions,
                })
            })
            .collect();
        WorkerReport {
            worker_id: self.worker.id.clone(),
            runtimes,
            executor: self.executor.health(),
        }
    }

    pub(super) async fn renew_lease(&self) -> Result<(), StoreError> {
        let now = integr8s_core::now();
        let expires_at = now + chrono_duration(self.worker.lease);
        self.store
            .renew_lease(&self.report(), now, expires_at)
            .await
    }

    /// Settles the runs a previous start under this id left behind.
    pub(super) async fn recover(&self) -> Result<(), EngineError> {
        for run in self.store.runs_of(&self.worker.id).await? {
            tracing::warn!(execution_id = %run.execution_id, started = run.started, "settling a run interrupted by a restart");
            self.settle(&run, RESTART_MESSAGE).await?;
        }
        Ok(())
    }

    pub(super) async fn lease_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.worker.heartbeat);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats: u32 = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = interval.tick() => {}
            }
            if let Err(e) = self.renew_lease().await {
                tracing::warn!(error = %e, "could not renew the worker lease");
            }
            if let Err(e) = self.check_ownership().await {
                tracing::warn!(error = %e, "could not check which runs this worker owns");
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "could not settle the runs of lost workers");
            }
            beats = beats.wrapping_add(1);
            if beats.is_multiple_of(PRUNE_EVERY) {
                let before = integr8s_core::now() - chrono_duration(FORGET_LEASES_AFTER);
                if let Err(e) = self.store.prune_leases(before).await {
                    tracing::debug!(error = %e, "could not forget old leases");
                }
            }
        }
    }

    /// Stops the live runs the store no longer lists as this worker's (settled by another
    /// worker while this one could not renew its lease): their outcome is dropped.
    async fn check_ownership(&self) -> Result<(), StoreError> {
        // The live set is read before the store: a run is live only after its claim, so a
        // run missing from the store's answer was settled (or ended) after it went live.
        let live: Vec<(String, super::LiveRun)> = lock(&self.runs)
            .live
            .iter()
            .map(|(id, run)| (id.clone(), run.clone()))
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let owned: HashSet<String> = self
            .store
            .runs_of(&self.worker.id)
            .await?
            .into_iter()
            .map(|r| r.execution_id)
            .collect();
        for (id, run) in live {
            if !owned.contains(&id) && !run.cancel.is_cancelled() {
                tracing::warn!(execution_id = %id, "run no longer owned by this worker; stopping it");
                run.abandoned.store(true, Ordering::SeqCst);
                run.cancel.cancel();
            }
        }
        Ok(())
    }

    /// Settles the runs of workers whose lease expired. Never this worker's own: it is alive,
    /// even when its lease lapsed while the store was away (its renewal may fail once more
    /// just before this read succeeds), and it reports its runs itself.
    async fn sweep(&self) -> Result<(), EngineError> {
        let lost = self
            .store
            .lost_runs(integr8s_core::now(), SWEEP_BATCH)
            .await?;
        for run in lost.iter().filter(|r| r.worker_id != self.worker.id) {
            self.settle(run, &lost_message(&run.worker_id)).await?;
        }
        Ok(())
    }

    /// Settles one run whose owner is gone; `message` says why, for a run that started.
    async fn settle(&self, run: &OwnedRun, message: &str) -> Result<(), EngineError> {
        let id = run.execution_id.as_str();
        let event = if run.started {
            let metadata = self.outbox.metadata(Some(run.user_id.clone()));
            Envelope::new(system_failure(id, message.to_owned()), metadata)
        } else {
            self.restart_event(run).await?
        };
        match self.store.settle_run(run, &event).await? {
            Some(stored) => {
                tracing::info!(
                    execution_id = id,
                    owner = %run.worker_id,
                    started = run.started,
                    settled_with = %stored.envelope.event_type(),
                    "run of a gone worker settled"
                );
                self.outbox.publish_stored(&stored).await;
            }
            None => tracing::debug!(execution_id = id, "run settled elsewhere or moved on"),
        }
        Ok(())
    }

    /// The event that carries on a run that never started: its cancel when one was asked for,
    /// else its run command again.
    async fn restart_event(&self, run: &OwnedRun) -> Result<Envelope, EngineError> {
        let id = run.execution_id.as_str();
        let history = self
            .store
            .events_for_aggregate(
                id,
                &[EventType::CreatePodCommand, EventType::DeletePodCommand],
                HISTORY_LIMIT,
            )
            .await?;
        let cancel = history
            .iter()
            .rev()
            .find_map(|e| CancelRequest::from_command(&e.envelope).map(|r| (e, r)));
        if let Some((event, request)) = cancel {
            let payload = cancelled_before_start(id, &request);
            return Ok(self.outbox.caused_by(&event.envelope, payload));
        }
        let command = history
            .iter()
            .rev()
            .find(|e| e.envelope.event_type() == EventType::CreatePodCommand);
        Ok(match command {
            Some(command) => self
                .outbox
                .caused_by(&command.envelope, command.envelope.payload.clone()),
            None => {
                let metadata = self.outbox.metadata(Some(run.user_id.clone()));
                let message = "the run command of a run to schedule again was not found";
                Envelope::new(system_failure(id, message.to_owned()), metadata)
            }
        })
    }
}
