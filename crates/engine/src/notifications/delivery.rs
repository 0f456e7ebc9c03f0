//! The delivery worker: claims due webhook/Slack deliveries from the store, sends them, and
//! records the outcome — delivered, retry at an exponentially backed-off time, or failed and
//! dead-lettered. A DLQ retry of a dead-lettered delivery gives it a new series of attempts.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::notification::NotificationDelivery;
use integr8s_core::ports::dlq::NewDlqMessage;
use integr8s_core::ports::{DeliveryOutcome, EventBus, NotificationDeliveryStore};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{http, target, NotificationConfig, NotificationError, DELIVERY_GROUP};
use crate::error::EngineError;

/// Deliveries sent at the same time.
const CONCURRENCY: usize = 8;

/// Sends external notification deliveries. Any number of workers (in any process) may run:
/// the store hands each due delivery to one of them.
pub struct DeliveryWorker {
    store: Arc<dyn NotificationDeliveryStore>,
    bus: Arc<dyn EventBus>,
    config: NotificationConfig,
    client: reqwest::Client,
}

impl DeliveryWorker {
    pub fn new(
        store: Arc<dyn NotificationDeliveryStore>,
        bus: Arc<dyn EventBus>,
        config: NotificationConfig,
    ) -> Result<Self, NotificationError> {
        // No proxy from the environment: a proxy would resolve the target itself, past the
        // public-address check of the resolver below.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !config.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(target::PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| NotificationError::HttpClient(e.to_string()))?;
        Ok(Self {
            store,
            bus,
            config,
            client,
        })
    }

    /// Sends due deliveries until `shutdown`: on every new notification and at least every
    /// `poll_interval` (retries come due without any event).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let mut created = self.bus.watch(&[EventType::NotificationCreated]).await?;
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tracing::info!("notification delivery worker started");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
                next = created.next() => {
                    if next.is_none() {
                        return Err(EngineError::SubscriptionEnded { group: DELIVERY_GROUP.to_owned() });
                    }
                }
            }
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "notification delivery round failed");
            }
        }
    }

    /// One round: takes DLQ retries back, then claims and sends every due delivery (up to the
    /// batch size). Returns how many deliveries were attempted.
    pub async fn run_once(&self) -> Result<usize, EngineError> {
        if let Err(e) = self.take_back_dlq_retries().await {
            tracing::warn!(error = %e, "taking back delivery retries from the DLQ failed");
        }
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.config.lease())
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let claimed = self
            .store
            .claim_deliveries(now, now + lease, self.config.batch.max(1))
            .await?;
        let count = claimed.len();
        futures::stream::iter(claimed)
            .for_each_concurrent(CONCURRENCY, |d| async move {
                if let Err(e) = self.attempt(&d).await {
                    tracing::warn!(notification_id = %d.notification_id, channel = %d.channel, error = %e, "recording a delivery outcome failed; it is retried after its claim expires");
                }
            })
            .await;
        Ok(count)
    }

    async fn attempt(&self, d: &NotificationDelivery) -> Result<(), EngineError> {
        let Some(notification) = self.store.notification(&d.notification_id).await? else {
            // Deleted since: its deliveries went with it.
            return Ok(());
        };
        // A target that is not a public address never gets a request (see `target`); that
        // does not change with time, so it is not retried.
        let refused = (!self.config.allow_private_targets)
            .then(|| target::check_url(&d.target_url).err())
            .flatten();
        let result = if let Some(reason) = &refused {
            Err(reason.clone())
        } else if d.attempts > d.max_attempts {
            // Claimed again after workers stopped mid-attempt until the budget ran out.
            Err("interrupted attempts exhausted the retry budget".to_owned())
        } else {
            http::send(
                &self.client,
                d.channel,
                &d.target_url,
                d.secret.as_deref(),
                &notification,
            )
            .await
        };
        let now = Utc::now();
        let outcome = match result {
            Ok(()) => DeliveryOutcome::Delivered { at: now },
            Err(error) if refused.is_some() || d.attempts >= d.max_attempts => {
                DeliveryOutcome::Failed { at: now, error }
            }
            Err(error) => {
                let delay = chrono::Duration::from_std(self.config.backoff(d.attempts))
                    .unwrap_or_else(|_| chrono::Duration::seconds(30));
                DeliveryOutcome::Retry {
                    at: now + delay,
                    error,
                }
            }
        };
        let recorded = self
            .store
            .finish_delivery(&d.notification_id, d.channel, d.attempts, &outcome)
            .await?;
        match &outcome {
            DeliveryOutcome::Delivered { .. } => {
                tracing::info!(notification_id = %d.notification_id, channel = %d.channel, attempt = d.attempts, recorded, "notification delivered");
            }
            DeliveryOutcome::Retry { at, error } => {
                tracing::info!(notification_id = %d.notification_id, channel = %d.channel, attempt = d.attempts, %error, retry_at = %at, "notification delivery failed; will retry");
            }
            DeliveryOutcome::Failed { error, .. } => {
                tracing::warn!(notification_id = %d.notification_id, channel = %d.channel, attempts = d.attempts, %error, "notification delivery failed for good");
                if recorded {
                    self.dead_letter_delivery(d, error).await;
                }
            }
        }
        Ok(())
    }

    /// Hands a delivery that ran out of attempts to the dead-letter queue, under the
    /// [`DELIVERY_GROUP`] group with the notification's `notification_created` event, so an
    /// operator can inspect it and retry it (see [`Self::take_back_dlq_retries`]).
    async fn dead_letter_delivery(&self, d: &NotificationDelivery, error: &str) {
        let event = match self
            .store
            .events_for_aggregate(&d.notification_id, &[EventType::NotificationCreated], 1)
            .await
        {
            Ok(events) => events.into_iter().next(),
            Err(e) => {
                tracing::warn!(error = %e, "loading the notification event for the DLQ failed");
                None
            }
        };
        let Some(event) = event else {
            tracing::warn!(notification_id = %d.notification_id, "no notification_created event to dead-letter");
            return;
        };
        let message = NewDlqMessage {
            group: DELIVERY_GROUP.to_owned(),
            event,
            error: format!(
                "{} delivery failed after {} attempts: {error}",
                d.channel, d.attempts
            ),
            attempts: d.attempts,
            producer_id: DELIVERY_GROUP.to_owned(),
            failed_at: Utc::now(),
        };
        if let Err(e) = self.store.dead_letter(&message).await {
            tracing::error!(notification_id = %d.notification_id, error = %e, "dead-lettering a failed delivery failed");
        }
    }

    /// Redeliveries the DLQ requested for [`DELIVERY_GROUP`]: the failed deliveries of the
    /// message's notification start a new series of attempts.
    async fn take_back_dlq_retries(&self) -> Result<(), EngineError> {
        let now = Utc::now();
        let claim = now + chrono::Duration::seconds(60);
        let messages = self
            .store
            .claim_dlq_redeliveries(DELIVERY_GROUP, now, claim, self.config.batch.max(1))
            .await?;
        for message in messages {
            if let EventPayload::NotificationCreated {
                notification_id, ..
            } = &message.event.envelope.payload
            {
                let reopened = self
                    .store
                    .reopen_failed_deliveries(notification_id, now)
                    .await?;
                tracing::info!(%notification_id, reopened, "delivery retried from the DLQ");
            }
            self.store
                .complete_dlq_redelivery(&message.message_id, now)
                .await?;
        }
        Ok(())
    }
}
