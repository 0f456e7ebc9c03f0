//! The replay runner: executes `running` replay sessions stored in the database.
//!
//! The runner claims a running session with a lease (so one runner at a time works on it,
//! whichever process it lives in), replays the selected events in timestamp order to the
//! session's target at the session's speed, and persists its counters and cursor after every
//! event. It re-reads the session's status between events, so pause and cancel take effect
//! while it runs; a paused session is released and, once resumed, claimed again and continued
//! after its cursor.
//!
//! Events sent to the bus are copies with a new `event_id` and the provenance marker
//! `metadata.correlation_id = "replay:<session_id>:<original event_id>"`; the pipeline's
//! consumers skip marked events, so a replay never runs anything again. Marked events are never
//! selected for a replay (a replay cannot feed on its own copies); should one slip through, it
//! is counted in `skipped_events`, not replayed.

mod session;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use integr8s_core::outbox::Outbox;
use integr8s_core::ports::ReplayRunnerStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use target::{resolve_file, DeliveryError};

use crate::error::EngineError;

/// Settings of the replay runner.
#[derive(Debug, Clone)]
pub struct ReplayRunnerConfig {
    /// How often the runner looks for running sessions.
    pub poll: Duration,
    /// How long a claim on a session lasts without renewal.
    pub lease: Duration,
    /// Sessions replayed at once by this runner.
    pub max_parallel: usize,
    /// The directory `file` targets write into.
    pub file_dir: PathBuf,
}

impl ReplayRunnerConfig {
    pub fn new(file_dir: PathBuf) -> Self {
        Self {
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            max_parallel: 2,
            file_dir,
        }
    }
}

/// Runs replay sessions; see the module docs.
pub struct ReplayRunner {
    ctx: Arc<session::Ctx>,
}

impl ReplayRunner {
    pub fn new(
        store: Arc<dyn ReplayRunnerStore>,
        outbox: Outbox,
        config: ReplayRunnerConfig,
    ) -> Self {
        Self {
            ctx: Arc::new(session::Ctx {
                store,
                outbox,
                config,
            }),
        }
    }

    /// Claims and replays running sessions until `shutdown`; on shutdown the sessions in
    /// progress save their position and are released for the next start.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let mut tasks = JoinSet::new();
        let mut poll = tokio::time::interval(self.ctx.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(dir = %self.ctx.config.file_dir.display(), "replay runner running");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a replay task panicked");
                    }
                    continue;
                }
            }
            while tasks.len() < self.ctx.config.max_parallel.max(1) {
                let now = integr8s_core::now();
                let until = now + session::to_chrono(self.ctx.config.lease);
                match self.ctx.store.claim_replay_session(now, until).await {
                    Ok(Some(s)) => {
                        tracing::info!(session_id = %s.session_id, "replay session claimed");
                        tasks.spawn(session::run_session(self.ctx.clone(), s, shutdown.clone()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a replay session");
                        break;
                    }
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a replay task panicked");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
