//! The subscribe / handle / ack loop shared by every component.
//!
//! Deliveries are handled one at a time, in the order the bus hands them out, so the events of
//! one execution are seen in order. A handler success acks; a failure nacks (the bus redelivers)
//! until the delivery reached `max_attempts`, when it is logged and acked so that one poisoned
//! event cannot stall the group.

use async_trait::async_trait;
use futures::StreamExt;
use integr8s_core::error::StoreError;
use integr8s_core::event::{Envelope, EventPayload, EventType, StoredEvent};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::EventBus;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::EngineError;

/// What a handler knows about the delivery besides the event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// This is the last attempt: a failure now is logged and acked, not redelivered.
    pub last: bool,
}

/// One component's event handler.
#[async_trait]
pub(crate) trait Handler: Send + Sync {
    async fn handle(&self, event: &StoredEvent, attempt: Attempt) -> Result<(), EngineError>;
}

/// Consumes `topics` as `group` until `shutdown` is cancelled.
pub(crate) async fn consume(
    bus: &dyn EventBus,
    topics: &[EventType],
    group: &str,
    max_attempts: u32,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    let mut deliveries = bus.subscribe(topics, group).await?;
    tracing::info!(group, "consuming");
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = deliveries.next() => match next {
                Some(d) => d,
                None if shutdown.is_cancelled() => return Ok(()),
                None => return Err(EngineError::SubscriptionEnded { group: group.to_owned() }),
            },
        };
        let env = &delivery.event.envelope;
        let span = tracing::info_span!(
            "handle",
            group,
            event_type = %env.event_type(),
            execution_id = env.execution_id().unwrap_or_default(),
            seq = delivery.event.seq,
            attempt = delivery.attempt,
        );
        let attempt = Attempt {
            last: delivery.attempt >= max_attempts.max(1),
        };
        let result = handler
            .handle(&delivery.event, attempt)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match result {
            Ok(()) => delivery.ack(),
            Err(e) if attempt.last => {
                tracing::error!(error = %e, "handler failed on its last attempt; event dropped");
                delivery.ack();
            }
            Err(e) => {
                tracing::warn!(error = %e, "handler failed; the event will be redelivered");
                delivery.nack();
            }
        }
    }
}

/// Emits `payload` on behalf of the user of `cause`, in the same correlation.
pub(crate) async fn emit_caused_by(
    outbox: &Outbox,
    cause: &Envelope,
    payload: EventPayload,
) -> Result<StoredEvent, StoreError> {
    outbox
        .emit(
            payload,
            cause.metadata.user_id.clone(),
            cause.metadata.correlation_id.clone(),
        )
        .await
}
