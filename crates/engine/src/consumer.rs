//! The subscribe / handle / ack loop shared by every component.
//!
//! Deliveries are handled one at a time, in the order the bus hands them out, so the events of
//! one execution are seen in order. A handler success acks; a failure nacks (the bus redelivers)
//! until the delivery reached `max_attempts`, when it is dead-lettered (with
//! [`consume_with_dlq`]; [`consume`] only logs) and acked, so that one poisoned event cannot
//! stall the group.
//!
//! Events re-published by a replay session (see [`is_replayed`]) are acked without being
//! handled: a replay must never run an execution or a saga step again.
//!
//! With a DLQ, the loop also polls the DLQ for redeliveries requested for its group and hands
//! those events to the handler once more, outside the bus: the other groups never see them, and
//! the handler gets the very same event (same id), so its idempotency holds.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use integr8s_core::error::StoreError;
use integr8s_core::event::{Envelope, EventMetadata, EventPayload, EventType, StoredEvent};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::dlq::{DlqMessage, NewDlqMessage};
use integr8s_core::ports::replay::is_replayed;
use integr8s_core::ports::{DeadLetterStore, EventBus};
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::{counter, histogram};
use integr8s_telemetry::trace;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::EngineError;

/// What a handler knows about the delivery besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// This is the last attempt: a failure now is logged and acked, not redelivered.
    pub last: bool,
}

/// One component's event handler.
#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, event: &StoredEvent, attempt: Attempt) -> Result<(), EngineError>;
}

/// How often a consumer with a DLQ looks for redeliveries requested for its group.
pub(crate) const REDELIVERY_POLL: Duration = Duration::from_secs(1);
/// How long a claimed redelivery is reserved for this consumer.
const REDELIVERY_CLAIM: Duration = Duration::from_secs(300);
/// Redeliveries claimed per poll.
const REDELIVERY_BATCH: u32 = 10;

/// Consumes `topics` as `group` until `shutdown` is cancelled. Events whose handler fails on
/// the last attempt are logged and dropped; prefer [`consume_with_dlq`].
pub(crate) async fn consume(
    bus: &dyn EventBus,
    topics: &[EventType],
    group: &str,
    max_attempts: u32,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    run(None, bus, topics, group, max_attempts, handler, shutdown).await
}

/// Like [`consume`], but an event whose handler failed `max_attempts` times is dead-lettered
/// in `store` (announced by `dlq_message_received`) before it is acked, and redeliveries the
/// DLQ requests for `group` are handled too.
pub async fn consume_with_dlq(
    store: &dyn DeadLetterStore,
    bus: &dyn EventBus,
    topics: &[EventType],
    group: &str,
    max_attempts: u32,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    run(
        Some(store),
        bus,
        topics,
        group,
        max_attempts,
        handler,
        shutdown,
    )
    .await
}

async fn run(
    dlq: Option<&dyn DeadLetterStore>,
    bus: &dyn EventBus,
    topics: &[EventType],
    group: &str,
    max_attempts: u32,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> Result<(), EngineError> {
    let mut deliveries = bus.subscribe(topics, group).await?;
    tracing::info!(group, dead_letters = dlq.is_some(), "consuming");
    let mut redelivery_tick = tokio::time::interval(REDELIVERY_POLL);
    redelivery_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = redelivery_tick.tick(), if dlq.is_some() => {
                if let Some(store) = dlq {
                    redeliver(store, bus, group, handler, shutdown).await;
                }
                continue;
            }
            next = deliveries.next() => match next {
                Some(d) => d,
                None if shutdown.is_cancelled() => return Ok(()),
                None => return Err(EngineError::SubscriptionEnded { group: group.to_owned() }),
            },
        };
        if is_replayed(&delivery.event.envelope) {
            tracing::debug!(group, seq = delivery.event.seq, "replayed event skipped");
            delivery.ack();
            continue;
        }
        let env = &delivery.event.envelope;
        let span = tracing::info_span!(
            "handle",
            group,
            event_type = %env.event_type(),
            execution_id = env.execution_id().unwrap_or_default(),
            seq = delivery.event.seq,
            attempt = delivery.attempt,
            otel.name = tracing::field::Empty,
            otel.kind = "consumer",
        );
        continue_trace(&span, group, env);
        let attempt = Attempt {
            last: delivery.attempt >= max_attempts.max(1),
        };
        let started = Instant::now();
        let result = handler
            .handle(&delivery.event, attempt)
            .instrument(span.clone())
            .await;
        record_handling(group, env.event_type().as_str(), started, result.is_err());
        let _entered = span.enter();
        match result {
            Ok(()) => delivery.ack(),
            Err(e) if attempt.last => {
                match dlq {
                    Some(store) => {
                        tracing::error!(error = %e, "handler failed on its last attempt; event dead-lettered");
                        let failure = NewDlqMessage {
                            group: group.to_owned(),
                            event: delivery.event.clone(),
                            error: e.to_string(),
                            attempts: delivery.attempt,
                            producer_id: group.to_owned(),
                            failed_at: integr8s_core::now(),
                        };
                        if let Err(dlq_error) = dead_letter(store, bus, &failure).await {
                            // Not acked: the bus redelivers and the DLQ is tried again.
                            tracing::error!(error = %dlq_error, "dead-lettering failed; the event will be redelivered");
                            delivery.nack();
                            continue;
                        }
                    }
                    None => {
                        tracing::error!(error = %e, "handler failed on its last attempt; event dropped");
                    }
                }
                delivery.ack();
            }
            Err(e) => {
                tracing::warn!(error = %e, "handler failed; the event will be redelivered");
                delivery.nack();
            }
        }
    }
}

/// Makes `span` (not yet entered) the span of this hop in the trace the event carries, named
/// after the group and the event type. Does nothing when tracing is off.
fn continue_trace(span: &tracing::Span, group: &str, env: &Envelope) {
    if !trace::enabled() {
        return;
    }
    span.record(
        "otel.name",
        format!("{group} {}", env.event_type().as_str()).as_str(),
    );
    trace::continue_trace(span, env.metadata.traceparent.as_deref());
}

fn record_handling(group: &str, event_type: &'static str, started: Instant, failed: bool) {
    histogram!(catalogue::EVENT_PROCESSING_DURATION_SECONDS, "group" => group.to_owned(), "event_type" => event_type)
        .record(started.elapsed().as_secs_f64());
    if failed {
        counter!(catalogue::EVENT_PROCESSING_ERRORS_TOTAL, "group" => group.to_owned(), "event_type" => event_type)
            .increment(1);
    }
}

/// Stores a failure in the DLQ and announces it with `dlq_message_received`.
pub(crate) async fn dead_letter(
    store: &dyn DeadLetterStore,
    bus: &dyn EventBus,
    failure: &NewDlqMessage,
) -> Result<DlqMessage, EngineError> {
    let message = store.dead_letter(failure).await?;
    counter!(catalogue::DLQ_MESSAGES_RECEIVED_TOTAL, "group" => failure.group.clone()).increment(1);
    let received = message.received_payload();
    let env = Envelope::new(
        received,
        EventMetadata::new(
            &failure.producer_id,
            failure.event.envelope.metadata.user_id.clone(),
        ),
    )
    .with_aggregate(message.message_id.clone());
    match store.append_event(&env).await {
        Ok(stored) => {
            if let Err(e) = bus.publish(&stored).await {
                tracing::warn!(error = %e, "publishing dlq_message_received failed; it stays in the store");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not store dlq_message_received"),
    }
    Ok(message)
}

/// Hands the redeliveries requested for `group` to the handler once each: a success completes
/// the redelivery, a failure dead-letters the event again (the DLQ's policy decides what next).
async fn redeliver(
    store: &dyn DeadLetterStore,
    bus: &dyn EventBus,
    group: &str,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) {
    let now = integr8s_core::now();
    let until = now + chrono_duration(REDELIVERY_CLAIM);
    let claimed = match store
        .claim_dlq_redeliveries(group, now, until, REDELIVERY_BATCH)
        .await
    {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(group, error = %e, "could not look for dlq redeliveries");
            return;
        }
    };
    for message in claimed {
        if shutdown.is_cancelled() {
            // The claim expires and the redelivery is handed out again.
            return;
        }
        let span = tracing::info_span!(
            "redeliver",
            group,
            dlq_message_id = %message.message_id,
            event_type = %message.event_type(),
            seq = message.event.seq,
            retry = message.retry_count,
            otel.name = tracing::field::Empty,
            otel.kind = "consumer",
        );
        continue_trace(&span, group, &message.event.envelope);
        let result = handler
            .handle(&message.event, Attempt { last: false })
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let settled = match result {
            Ok(()) => {
                tracing::info!("dlq redelivery handled");
                store
                    .complete_dlq_redelivery(&message.message_id, integr8s_core::now())
                    .await
                    .map(drop)
                    .map_err(EngineError::from)
            }
            Err(e) => {
                tracing::warn!(error = %e, "dlq redelivery failed; dead-lettered again");
                let failure = NewDlqMessage {
                    group: group.to_owned(),
                    event: message.event.clone(),
                    error: e.to_string(),
                    attempts: 1,
                    producer_id: group.to_owned(),
                    failed_at: integr8s_core::now(),
                };
                dead_letter(store, bus, &failure).await.map(drop)
            }
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not settle a dlq redelivery; it is handed out again later");
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Emits `payload` on behalf of the user of `cause`, in the same correlation.
pub async fn emit_caused_by(
    outbox: &Outbox,
    cause: &Envelope,
    payload: EventPayload,
) -> Result<StoredEvent, StoreError> {
    outbox
        .emit_envelope(&outbox.caused_by(cause, payload))
        .await
}
