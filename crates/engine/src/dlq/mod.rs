//! The DLQ processor: schedules dead-lettered events for retry under the policy of their
//! category, hands due ones back to their consumer group, discards those out of retries, and
//! drops messages past the retention.
//!
//! A retry is a *redelivery request* stored on the message; the group's own consumer loop
//! (`consume_with_dlq`) picks it up and runs its handler on the same event again. See
//! [`integr8s_core::ports::dlq`] for the lifecycle.

mod policy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventType};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::dlq::{DlqMessage, DlqStatus};
use integr8s_core::ports::DlqProcessorStore;
use tokio_util::sync::CancellationToken;

pub use policy::{jitter_factor, random_sample, retry_policy_for, RetryPolicy};

use crate::error::EngineError;

/// Messages handled per pass.
const BATCH: u32 = 100;

/// Settings of the DLQ processor.
#[derive(Debug, Clone, Copy)]
pub struct DlqConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Messages older than this are dropped; `None` keeps them for ever. The processor is the
    /// only owner of this retention: the retention sweeper leaves the DLQ alone.
    pub retention: Option<Duration>,
    /// The retry policy of an event type.
    pub policy_for: fn(EventType) -> RetryPolicy,
}

impl Default for DlqConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            policy_for: retry_policy_for,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DlqPass {
    pub purged: u64,
    pub scheduled: u32,
    pub retried: u32,
    pub discarded: u32,
}

/// Retries and discards dead-lettered events; see the module docs.
pub struct DlqProcessor {
    store: Arc<dyn DlqProcessorStore>,
    outbox: Outbox,
    config: DlqConfig,
}

/// Announces a DLQ state change of `message`.
pub async fn announce(
    outbox: &Outbox,
    message: &DlqMessage,
    payload: integr8s_core::EventPayload,
) -> Result<(), EngineError> {
    let user = message.event.envelope.metadata.user_id.clone();
    let env =
        Envelope::new(payload, outbox.metadata(user)).with_aggregate(message.message_id.clone());
    outbox.emit_envelope(&env).await?;
    Ok(())
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl DlqProcessor {
    pub fn new(store: Arc<dyn DlqProcessorStore>, outbox: Outbox, config: DlqConfig) -> Self {
        Self {
            store,
            outbox,
            config,
        }
    }

    /// Runs a pass every `interval` until `shutdown`. A failed pass is logged and retried on
    /// the next tick.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let mut interval = tokio::time::interval(self.config.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(interval = ?self.config.interval, "dlq processor running");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            match self.process_due(integr8s_core::now()).await {
                Ok(pass) if pass != DlqPass::default() => tracing::info!(?pass, "dlq pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "dlq pass failed"),
            }
        }
    }

    /// One pass at `now`: drop expired messages (when a retention is set), schedule pending ones, retry due ones, discard
    /// those out of retries.
    pub async fn process_due(&self, now: DateTime<Utc>) -> Result<DlqPass, EngineError> {
        let mut pass = DlqPass::default();
        if let Some(retention) = self.config.retention {
            pass.purged = self
                .store
                .purge_dlq_before(now - to_chrono(retention))
                .await?;
        }
        for message in self.store.due_dlq_messages(now, BATCH).await? {
            let policy = (self.config.policy_for)(message.event_type());
            if message.retry_count >= policy.max_retries {
                let reason = format!(
                    "max retries exceeded ({} of the {} policy)",
                    message.retry_count, policy.name
                );
                if self.discard(&message.message_id, &reason, now).await? {
                    pass.discarded += 1;
                }
                continue;
            }
            let delay = policy.delay(message.retry_count, random_sample());
            if message.status == DlqStatus::Pending && !delay.is_zero() {
                let at = now + to_chrono(delay);
                if self
                    .store
                    .schedule_dlq_retry(&message.message_id, at)
                    .await?
                {
                    tracing::debug!(message_id = %message.message_id, %at, "dlq retry scheduled");
                    pass.scheduled += 1;
                }
                continue;
            }
            if self.retry(&message.message_id, now).await? {
                pass.retried += 1;
            }
        }
        Ok(pass)
    }

    /// Requests a redelivery now and announces it. Returns whether the message was open.
    pub async fn retry(&self, message_id: &str, now: DateTime<Utc>) -> Result<bool, EngineError> {
        let Some(message) = self.store.retry_dlq_message(message_id, now).await? else {
            return Ok(false);
        };
        tracing::info!(message_id, group = %message.group, retry = message.retry_count, "dlq message retried");
        announce(&self.outbox, &message, message.retried_payload()).await?;
        Ok(true)
    }

    /// Discards a message and announces it. Returns whether the message was open.
    pub async fn discard(
        &self,
        message_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let Some(message) = self
            .store
            .discard_dlq_message(message_id, reason, now)
            .await?
        else {
            return Ok(false);
        };
        tracing::info!(message_id, group = %message.group, reason, "dlq message discarded");
        announce(&self.outbox, &message, message.discarded_payload(reason)).await?;
        Ok(true)
    }
}
