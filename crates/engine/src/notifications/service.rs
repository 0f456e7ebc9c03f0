//! The notification service: one in-app notification per finished execution (plus a pending
//! delivery per external channel the user subscribed to), stored together with its
//! `notification_created` event.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use integr8s_core::event::{Envelope, EventPayload, EventType, StoredEvent};
use integr8s_core::notification::{
    effective_subscriptions, Notification, NotificationChannel, NotificationDelivery,
    NotificationStatus, Subscription, Throttle,
};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{CreateNotification, EventBus, NotificationServiceStore};
use tokio_util::sync::CancellationToken;

use super::content::{self, Content};
use super::{NotificationConfig, NOTIFICATION_GROUP};
use crate::config::EngineConfig;
use crate::consumer::{consume, Attempt, Handler};
use crate::error::EngineError;

const TOPICS: &[EventType] = &[EventType::ResultStored];

/// Creates notifications for finished executions. Consumes `result_stored` (the stored result
/// is the source of truth for what the user is told) as the `notification-service` group.
pub struct NotificationService {
    bus: Arc<dyn EventBus>,
    max_attempts: u32,
    inner: Inner,
}

struct Inner {
    store: Arc<dyn NotificationServiceStore>,
    outbox: Outbox,
    config: NotificationConfig,
}

impl NotificationService {
    pub fn new(
        store: Arc<dyn NotificationServiceStore>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        engine: EngineConfig,
        config: NotificationConfig,
    ) -> Self {
        Self {
            bus,
            max_attempts: engine.max_handler_attempts,
            inner: Inner {
                store,
                outbox,
                config,
            },
        }
    }

    /// Consumes stored results until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        consume(
            self.bus.as_ref(),
            TOPICS,
            NOTIFICATION_GROUP,
            self.max_attempts,
            &self.inner,
            &shutdown,
        )
        .await
    }
}

#[async_trait]
impl Handler for Inner {
    async fn handle(&self, event: &StoredEvent, _attempt: Attempt) -> Result<(), EngineError> {
        let env = &event.envelope;
        let Some(execution_id) = env.execution_id() else {
            return Ok(());
        };
        let Some(execution) = self.store.execution(execution_id).await? else {
            return Ok(());
        };
        let Some(content) = content::for_execution(&execution) else {
            return Ok(());
        };
        self.create(env, &execution.user_id, content).await
    }
}

impl Inner {
    async fn create(
        &self,
        cause: &Envelope,
        user_id: &str,
        content: Content,
    ) -> Result<(), EngineError> {
        let now = Utc::now();
        let subscriptions =
            effective_subscriptions(self.store.subscriptions(user_id).await?, user_id);
        let accepts = |s: &Subscription| s.accepts(content.severity, &content.tags);
        let in_app = subscriptions
            .iter()
            .any(|s| s.channel == NotificationChannel::InApp && accepts(s));
        let notification = Notification {
            notification_id: integr8s_core::new_id(),
            user_id: user_id.to_owned(),
            channel: NotificationChannel::InApp,
            severity: content.severity,
            status: if in_app {
                NotificationStatus::Delivered
            } else {
                NotificationStatus::Skipped
            },
            subject: content.subject,
            body: content.body,
            action_url: Some(content.action_url),
            tags: content.tags.clone(),
            dedup_key: Some(content.dedup_key),
            created_at: now,
            read_at: None,
        };
        let deliveries: Vec<NotificationDelivery> = subscriptions
            .iter()
            .filter(|s| accepts(s))
            .filter_map(|s| {
                let url = s.target_url()?;
                Some(NotificationDelivery {
                    notification_id: notification.notification_id.clone(),
                    channel: s.channel,
                    user_id: user_id.to_owned(),
                    status: NotificationStatus::Pending,
                    target_url: url.to_owned(),
                    secret: s.webhook_secret.clone(),
                    attempts: 0,
                    max_attempts: self.config.max_attempts.max(1),
                    next_attempt_at: now,
                    last_error: None,
                    delivered_at: None,
                    updated_at: now,
                })
            })
            .collect();
        let mut channels: Vec<NotificationChannel> = deliveries.iter().map(|d| d.channel).collect();
        if in_app {
            channels.insert(0, NotificationChannel::InApp);
        }
        let payload = EventPayload::NotificationCreated {
            notification_id: notification.notification_id.clone(),
            user_id: user_id.to_owned(),
            subject: notification.subject.clone(),
            body: notification.body.clone(),
            severity: notification.severity,
            tags: notification.tags.clone(),
            channels,
        };
        let created = Envelope::new(payload, self.outbox.metadata(Some(user_id.to_owned())))
            .with_aggregate(notification.notification_id.clone())
            .with_correlation(cause.metadata.correlation_id.clone());
        let throttle = self.config.throttle.and_then(|t| {
            let window = chrono::Duration::from_std(t.window).ok()?;
            Some(Throttle {
                max: t.max_per_window,
                since: now - window,
            })
        });
        match self
            .store
            .create_notification(&notification, &deliveries, &created, throttle)
            .await?
        {
            CreateNotification::Created(n, stored) => {
                tracing::info!(
                    notification_id = %n.notification_id,
                    status = n.status.as_str(),
                    deliveries = deliveries.len(),
                    "notification created"
                );
                self.outbox.publish_stored(&stored).await;
            }
            CreateNotification::Existing(n) => {
                tracing::debug!(notification_id = %n.notification_id, "notification already created");
            }
            CreateNotification::Throttled => {
                tracing::info!(
                    user_id,
                    severity = notification.severity.as_str(),
                    "notification throttled"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use integr8s_core::event::EventMetadata;
    use integr8s_core::execution::ExecutionResultRecord;
    use integr8s_core::notification::NotificationFilter;
    use integr8s_core::ports::{EventStore, ExecutionStore, NotificationStore};
    use integr8s_core::{Execution, ExecutionStatus, Priority, RunLimits};

    use super::*;

    async fn setup() -> (Arc<integr8s_store::SqliteStore>, Inner) {
        let sqlite = integr8s_store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap();
        sqlite.migrate().await.unwrap();
        let sqlite = Arc::new(sqlite);
        let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite.clone();
        let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
        let inner = Inner {
            store: sqlite.clone(),
            outbox: Outbox::new(events, bus, "notification-service"),
            config: NotificationConfig {
                throttle: None,
                ..NotificationConfig::default()
            },
        };
        (sqlite, inner)
    }

    async fn finished_execution(store: &integr8s_store::SqliteStore) -> StoredEvent {
        let now = integr8s_core::now();
        let e = Execution {
            execution_id: integr8s_core::new_id(),
            user_id: "u1".into(),
            script: "print(1)".into(),
            lang: "python".into(),
            lang_version: "3.11".into(),
            status: ExecutionStatus::Queued,
            priority: Priority::Normal,
            limits: RunLimits::default(),
            stdout: None,
            stderr: None,
            exit_code: None,
            error_type: None,
            error_message: None,
            resource_usage: None,
            idempotency_key: None,
            stdin: None,
            created_at: now,
            updated_at: now,
        };
        // The outbox companion of the stored execution; its type does not matter here.
        let requested = Envelope::new(
            EventPayload::ExecutionTimeout {
                execution_id: e.execution_id.clone(),
                timeout_seconds: 10,
                output: Default::default(),
            },
            EventMetadata::new("test", Some("u1".into())),
        );
        store.create_execution(&e, &requested).await.unwrap();
        let record = ExecutionResultRecord {
            status: ExecutionStatus::Timeout,
            stdout: String::new(),
            stderr: String::new(),
            exit_code: Some(-1),
            error_type: Some(integr8s_core::ErrorType::Timeout),
            error_message: None,
            resource_usage: None,
        };
        assert!(store
            .finish_execution(&e.execution_id, &record)
            .await
            .unwrap());
        let stored = Envelope::new(
            EventPayload::ResultStored {
                execution_id: e.execution_id.clone(),
                storage_type: None,
                storage_path: "db".into(),
                size_bytes: 0,
            },
            EventMetadata::new("test", Some("u1".into())),
        );
        store.append_event(&stored).await.unwrap()
    }

    #[tokio::test]
    async fn a_redelivered_result_notifies_once() {
        let (store, inner) = setup().await;
        let event = finished_execution(&store).await;
        let attempt = Attempt { last: false };
        inner.handle(&event, attempt).await.unwrap();
        inner.handle(&event, attempt).await.unwrap();
        let filter = NotificationFilter {
            user_id: "u1".into(),
            limit: 10,
            ..Default::default()
        };
        let (items, total) = store.list_notifications(&filter).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(
            items[0].subject,
            format!(
                "Execution Timeout: {}",
                event.envelope.execution_id().unwrap()
            )
        );
        assert_eq!(items[0].status, NotificationStatus::Delivered);
        let created = store
            .events_after(&[EventType::NotificationCreated], 0, 10)
            .await
            .unwrap();
        assert_eq!(created.len(), 1, "one notification_created event");
        assert!(store
            .deliveries(&items[0].notification_id)
            .await
            .unwrap()
            .is_empty());
    }
}
