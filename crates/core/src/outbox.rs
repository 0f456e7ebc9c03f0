//! Store-then-publish: every event is appended to the event store before the bus sees it, so an
//! event the bus loses is still in the log (the in-process bus reads from the log; a networked
//! bus's relay republishes what was not acknowledged).

use std::sync::Arc;

use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::counter;

use crate::error::StoreError;
use crate::event::{Envelope, EventMetadata, EventPayload, StoredEvent};
use crate::ports::{EventBus, EventStore};

/// Appends events and publishes them; shared by every component that emits events.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn EventStore>,
    bus: Arc<dyn EventBus>,
    service_name: &'static str,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn EventStore>,
        bus: Arc<dyn EventBus>,
        service_name: &'static str,
    ) -> Self {
        Self {
            store,
            bus,
            service_name,
        }
    }

    pub fn metadata(&self, user_id: Option<String>) -> EventMetadata {
        EventMetadata::new(self.service_name, user_id)
    }

    /// Builds an envelope for `payload` on behalf of `user_id`, stores it and publishes it.
    pub async fn emit(
        &self,
        payload: EventPayload,
        user_id: Option<String>,
        correlation_id: Option<String>,
    ) -> Result<StoredEvent, StoreError> {
        let env = Envelope::new(payload, self.metadata(user_id)).with_correlation(correlation_id);
        self.emit_envelope(&env).await
    }

    /// An envelope for `payload` on behalf of the user of `cause`, in the same correlation and
    /// trace (the current span's, else the cause's).
    pub fn caused_by(&self, cause: &Envelope, payload: EventPayload) -> Envelope {
        let mut env = Envelope::new(payload, self.metadata(cause.metadata.user_id.clone()))
            .with_correlation(cause.metadata.correlation_id.clone());
        if env.metadata.traceparent.is_none() {
            env.metadata.traceparent = cause.metadata.traceparent.clone();
        }
        env
    }

    /// Stores and publishes a ready envelope. A publish failure is logged, not returned: the
    /// event is durable in the store and will still be delivered.
    pub async fn emit_envelope(&self, env: &Envelope) -> Result<StoredEvent, StoreError> {
        let stored = self.store.append_event(env).await?;
        self.publish_stored(&stored).await;
        Ok(stored)
    }

    /// Stores several ready envelopes in one store call, in order, then publishes them.
    pub async fn emit_all(&self, envs: &[Envelope]) -> Result<Vec<StoredEvent>, StoreError> {
        let stored = self.store.append_events(envs).await?;
        for event in &stored {
            self.publish_stored(event).await;
        }
        Ok(stored)
    }

    /// Publishes an event already in the store (e.g. one stored in the same transaction as an
    /// aggregate).
    pub async fn publish_stored(&self, stored: &StoredEvent) {
        tracing::trace!(seq = stored.seq, event_type = %stored.envelope.event_type(), "publish");
        let event_type = stored.envelope.event_type().as_str();
        if let Err(e) = self.bus.publish(stored).await {
            counter!(catalogue::EVENT_PUBLISH_FAILURES_TOTAL, "event_type" => event_type)
                .increment(1);
            tracing::warn!(event_id = %stored.envelope.event_id, error = %e, "publish failed; event stays in the store for redelivery");
        } else {
            counter!(catalogue::EVENTS_PUBLISHED_TOTAL, "event_type" => event_type).increment(1);
        }
    }
}
