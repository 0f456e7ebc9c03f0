//! Replays one claimed session until it ends, is paused or cancelled, or the runner stops.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use integr8s_core::event::StoredEvent;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::replay::{
    is_replayed, ReplayCursor, ReplayError, ReplayProgress, ReplaySession, ReplayStatus,
    ReplayTarget, MAX_SESSION_ERRORS,
};
use integr8s_core::ports::ReplayRunnerStore;
use integr8s_core::StoreError;
use tokio_util::sync::CancellationToken;

use super::target::{resolve_file, DeliveryError, Target};
use super::ReplayRunnerConfig;

/// No inter-event delay at this speed or above.
const NO_DELAY_SPEED: f64 = 100.0;
/// Longest sleep between two looks at the session's status.
const CONTROL_SLICE: Duration = Duration::from_millis(250);
/// Longest back-off between delivery retries.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);

pub(super) struct Ctx {
    pub store: Arc<dyn ReplayRunnerStore>,
    pub outbox: Outbox,
    pub config: ReplayRunnerConfig,
}

pub(super) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Why a run stopped early.
enum Halt {
    /// Paused, cancelled or gone: leave the status as it is.
    Released,
    /// The runner is shutting down.
    Shutdown,
}

struct Run {
    ctx: Arc<Ctx>,
    session: ReplaySession,
    progress: ReplayProgress,
    stop: CancellationToken,
    lease_renewed: tokio::time::Instant,
}

pub(super) async fn run_session(ctx: Arc<Ctx>, session: ReplaySession, stop: CancellationToken) {
    let id = session.session_id.clone();
    let progress = ReplayProgress {
        replayed_events: session.replayed_events,
        failed_events: session.failed_events,
        skipped_events: session.skipped_events,
        last_event_at: session.last_event_at,
        errors: session.errors.clone(),
        cursor: session.cursor,
    };
    let mut run = Run {
        ctx,
        session,
        progress,
        stop,
        lease_renewed: tokio::time::Instant::now(),
    };
    let outcome = run.replay().await;
    if let Err(e) = run.settle(outcome).await {
        tracing::warn!(session_id = %id, error = %e, "could not record the end of a replay run");
    }
}

/// Whether the session's `target_topics` (when set) name the event's type: only those types
/// are replayed, the others are counted as skipped.
fn selected(config: &integr8s_core::ports::replay::ReplayConfig, event: &StoredEvent) -> bool {
    config
        .target_topics
        .as_ref()
        .is_none_or(|topics| topics.contains_key(event.envelope.event_type().as_str()))
}

impl Run {
    fn store(&self) -> &dyn ReplayRunnerStore {
        self.ctx.store.as_ref()
    }

    /// Replays until the selection is exhausted (`Ok(Ok(status))` with the final status) or the
    /// run must halt.
    async fn replay(&mut self) -> Result<Result<ReplayStatus, Halt>, StoreError> {
        let config = self.session.config.clone();
        let file = match config.target {
            ReplayTarget::File => match resolve_file(&self.ctx.config.file_dir, &self.session) {
                Ok(path) => Some(path),
                Err(e) => {
                    self.record_error(None, &e);
                    return Ok(Ok(ReplayStatus::Failed));
                }
            },
            _ => None,
        };
        let batch = config.batch_size.max(1);
        let mut previous: Option<DateTime<Utc>> = None;
        loop {
            let events = self
                .store()
                .replay_events(&config.filter, self.progress.cursor, batch)
                .await?;
            if events.is_empty() {
                return Ok(Ok(ReplayStatus::Completed));
            }
            for event in events {
                if config.max_events.is_some_and(|max| self.processed() >= max) {
                    return Ok(Ok(ReplayStatus::Completed));
                }
                if let Err(halt) = self.wait_gap(previous, event.envelope.timestamp).await? {
                    return Ok(Err(halt));
                }
                previous = Some(event.envelope.timestamp);
                let failed = if is_replayed(&event.envelope) || !selected(&config, &event) {
                    self.progress.skipped_events += 1;
                    false
                } else {
                    let target = Target {
                        outbox: &self.ctx.outbox,
                        session: &self.session,
                        file: file.clone(),
                    };
                    match self.deliver_with_retries(&target, &event).await {
                        Ok(()) => {
                            self.progress.replayed_events += 1;
                            false
                        }
                        Err(e) => {
                            self.progress.failed_events += 1;
                            self.record_error(Some(&event), &e);
                            true
                        }
                    }
                };
                self.progress.last_event_at = Some(integr8s_core::now());
                self.progress.cursor = Some(ReplayCursor {
                    timestamp: event.envelope.timestamp,
                    seq: event.seq,
                });
                self.save().await?;
                if failed && !config.skip_errors {
                    return Ok(Ok(ReplayStatus::Failed));
                }
            }
        }
    }

    fn processed(&self) -> u64 {
        self.progress.replayed_events + self.progress.failed_events + self.progress.skipped_events
    }

    fn record_error(&mut self, event: Option<&StoredEvent>, e: &DeliveryError) {
        tracing::warn!(session_id = %self.session.session_id, error = %e, "replay of an event failed");
        if self.progress.errors.len() >= MAX_SESSION_ERRORS {
            self.progress.errors.remove(0);
        }
        self.progress.errors.push(ReplayError {
            timestamp: integr8s_core::now(),
            error: e.to_string(),
            error_type: Some(e.kind().to_owned()),
            event_id: event.map(|ev| ev.envelope.event_id.clone()),
        });
    }

    async fn deliver_with_retries(
        &self,
        target: &Target<'_>,
        event: &StoredEvent,
    ) -> Result<(), DeliveryError> {
        let config = &self.session.config;
        let attempts = if config.retry_failed {
            config.retry_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            match target.deliver(event).await {
                Ok(()) => return Ok(()),
                Err(e @ (DeliveryError::Unsupported(_) | DeliveryError::BadPath(_))) => {
                    return Err(e)
                }
                Err(e) if attempt >= attempts => return Err(e),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "replay delivery failed; retrying");
                    let backoff = Duration::from_millis(100)
                        .saturating_mul(1 << attempt.min(10))
                        .min(MAX_RETRY_BACKOFF);
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Waits the original gap between two events divided by the speed, looking at the session's
    /// status at least every [`CONTROL_SLICE`] and before every event.
    async fn wait_gap(
        &mut self,
        previous: Option<DateTime<Utc>>,
        next: DateTime<Utc>,
    ) -> Result<Result<(), Halt>, StoreError> {
        let speed = self.session.config.speed_multiplier;
        let gap = previous
            .and_then(|p| (next - p).to_std().ok())
            .filter(|_| speed > 0.0 && speed < NO_DELAY_SPEED)
            .map(|g| g.div_f64(speed))
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + gap;
        loop {
            if let Err(halt) = self.control().await? {
                return Ok(Err(halt));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(Ok(()));
            }
            tokio::select! {
                () = self.stop.cancelled() => return Ok(Err(Halt::Shutdown)),
                () = tokio::time::sleep(left.min(CONTROL_SLICE)) => {}
            }
        }
    }

    /// Whether the session may go on: still `running` and the runner not stopping. Renews
    /// the lease now and then.
    async fn control(&mut self) -> Result<Result<(), Halt>, StoreError> {
        if self.stop.is_cancelled() {
            return Ok(Err(Halt::Shutdown));
        }
        let status = self
            .store()
            .replay_session(&self.session.session_id)
            .await?
            .map(|s| s.status);
        if status != Some(ReplayStatus::Running) {
            tracing::info!(session_id = %self.session.session_id, ?status, "replay run halted");
            return Ok(Err(Halt::Released));
        }
        let lease = self.ctx.config.lease;
        if self.lease_renewed.elapsed() >= lease / 3 {
            let until = integr8s_core::now() + to_chrono(lease);
            self.store()
                .lease_replay_session(&self.session.session_id, Some(until))
                .await?;
            self.lease_renewed = tokio::time::Instant::now();
        }
        Ok(Ok(()))
    }

    async fn save(&self) -> Result<(), StoreError> {
        self.store()
            .save_replay_progress(&self.session.session_id, &self.progress)
            .await
            .map(drop)
    }

    /// Records how the run ended: the final status, or a released lease.
    async fn settle(
        &mut self,
        outcome: Result<Result<ReplayStatus, Halt>, StoreError>,
    ) -> Result<(), StoreError> {
        let id = self.session.session_id.clone();
        match outcome {
            Ok(Ok(status)) => {
                self.save().await?;
                let moved = self
                    .store()
                    .transition_replay_session(
                        &id,
                        &[ReplayStatus::Running],
                        status,
                        None,
                        integr8s_core::now(),
                    )
                    .await?;
                tracing::info!(session_id = %id, status = status.as_str(), moved, "replay run finished");
                if !moved {
                    self.store().lease_replay_session(&id, None).await?;
                }
                Ok(())
            }
            Ok(Err(Halt::Released | Halt::Shutdown)) => {
                self.save().await?;
                self.store().lease_replay_session(&id, None).await
            }
            Err(e) => {
                tracing::warn!(session_id = %id, error = %e, "replay run interrupted by a store error");
                // The lease expires; the session is claimed again later.
                Err(e)
            }
        }
    }
}
