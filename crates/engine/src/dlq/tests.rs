//! A consumer whose handler fails on marked events dead-letters them; the processor retries
//! them to that group only, and discards them when the policy's retries are spent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::event::{EventPayload, EventType, StoredEvent};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::dlq::{DlqFilter, DlqMessage, DlqStatus};
use integr8s_core::ports::replay::replay_correlation;
use integr8s_core::ports::{EventBus, Store};
use tokio_util::sync::CancellationToken;

use super::{DlqConfig, DlqProcessor, RetryPolicy};
use crate::consumer::{consume_with_dlq, Attempt, Handler};
use crate::error::EngineError;

const DEADLINE: Duration = Duration::from_secs(30);
const GROUP: &str = "dlq-test";

/// Fails on executions named `poison-*` until healed; records what it handled.
#[derive(Default)]
struct Flaky {
    healed: AtomicBool,
    handled: Mutex<Vec<String>>,
}

#[async_trait]
impl Handler for Flaky {
    async fn handle(&self, event: &StoredEvent, _attempt: Attempt) -> Result<(), EngineError> {
        let env = &event.envelope;
        let poisoned = env
            .execution_id()
            .is_some_and(|id| id.starts_with("poison"));
        if poisoned && !self.healed.load(Ordering::SeqCst) {
            return Err(integr8s_core::StoreError::Other(format!(
                "cannot handle {}",
                env.execution_id().unwrap_or_default()
            ))
            .into());
        }
        if let Ok(mut handled) = self.handled.lock() {
            handled.push(env.event_id.clone());
        }
        Ok(())
    }
}

fn quick_policy(_: EventType) -> RetryPolicy {
    RetryPolicy {
        name: "test",
        max_retries: 2,
        base: Duration::ZERO,
        max: Duration::ZERO,
        multiplier: 1.0,
    }
}

fn queued(execution_id: &str) -> EventPayload {
    EventPayload::ExecutionQueued {
        execution_id: execution_id.to_owned(),
        position_in_queue: None,
        estimated_start_time: None,
    }
}

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn message_in(
    store: &Arc<dyn Store>,
    id: &str,
    status: DlqStatus,
    retries: u32,
) -> DlqMessage {
    wait_for(
        &format!("{id} {status:?} after {retries} retries"),
        || async {
            store
                .dlq_message(id)
                .await
                .unwrap()
                .filter(|m| m.status == status && m.retry_count == retries)
        },
    )
    .await
}

async fn count_events(store: &Arc<dyn Store>, t: EventType) -> usize {
    store.events_after(&[t], 0, 0).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handler_dead_letters_then_retries_and_discards() {
    let sqlite = integr8s_store::SqliteStore::open("sqlite::memory:")
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let sqlite = Arc::new(sqlite);
    let store: Arc<dyn Store> = sqlite.clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = Outbox::new(events, bus.clone(), "dlq-test");
    let handler = Arc::new(Flaky::default());
    let shutdown = CancellationToken::new();
    let consumer = {
        let (store, bus, handler, shutdown) = (
            store.clone(),
            bus.clone(),
            handler.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            consume_with_dlq(
                store.as_ref(),
                bus.as_ref(),
                &[EventType::ExecutionQueued],
                GROUP,
                2,
                handler.as_ref(),
                &shutdown,
            )
            .await
        })
    };
    let processor = DlqProcessor::new(
        store.clone(),
        outbox.clone(),
        DlqConfig {
            policy_for: quick_policy,
            ..DlqConfig::default()
        },
    );

    let good = outbox.emit(queued("fine-1"), None, None).await.unwrap();
    let poison = outbox
        .emit(queued("poison-1"), Some("u1".into()), None)
        .await
        .unwrap();
    let replayed = outbox
        .emit(queued("fine-2"), None, Some(replay_correlation("s1", "x")))
        .await
        .unwrap();

    // After its two attempts the poisoned event lands in the DLQ with the error.
    let (messages, _) = wait_for("the dead letter", || async {
        let found = store
            .list_dlq_messages(&DlqFilter::default())
            .await
            .unwrap();
        (found.1 == 1).then_some(found)
    })
    .await;
    let m = &messages[0];
    assert_eq!(m.group, GROUP);
    assert_eq!(m.event.envelope.event_id, poison.envelope.event_id);
    assert_eq!(
        (m.attempts, m.retry_count, m.status),
        (2, 0, DlqStatus::Pending)
    );
    assert!(m.error.contains("cannot handle poison-1"), "{}", m.error);
    let received = store
        .events_after(&[EventType::DlqMessageReceived], 0, 0)
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].envelope.aggregate_id.as_deref(),
        Some(m.message_id.as_str())
    );

    // Each retry redelivers to the group, fails again and reopens the message.
    for retry in 1..=2 {
        let pass = processor.process_due(integr8s_core::now()).await.unwrap();
        assert_eq!(pass.retried, 1);
        message_in(&store, &m.message_id, DlqStatus::Pending, retry).await;
    }
    assert_eq!(count_events(&store, EventType::DlqMessageRetried).await, 2);
    // The policy allows two retries: the next pass discards it.
    let pass = processor.process_due(integr8s_core::now()).await.unwrap();
    assert_eq!(pass.discarded, 1);
    message_in(&store, &m.message_id, DlqStatus::Discarded, 2).await;
    assert_eq!(
        count_events(&store, EventType::DlqMessageDiscarded).await,
        1
    );

    // A healed handler takes a redelivered event: the message ends retried and redelivered.
    let poison2 = outbox.emit(queued("poison-2"), None, None).await.unwrap();
    let m2 = wait_for("the second dead letter", || async {
        let (found, _) = store
            .list_dlq_messages(&DlqFilter {
                status: Some(DlqStatus::Pending),
                ..DlqFilter::default()
            })
            .await
            .unwrap();
        found.into_iter().next()
    })
    .await;
    handler.healed.store(true, Ordering::SeqCst);
    assert!(processor
        .retry(&m2.message_id, integr8s_core::now())
        .await
        .unwrap());
    let done = wait_for("the redelivery", || async {
        store
            .dlq_message(&m2.message_id)
            .await
            .unwrap()
            .filter(|m| m.redelivered_at.is_some())
    })
    .await;
    assert_eq!((done.status, done.retry_count), (DlqStatus::Retried, 1));

    let handled = handler
        .handled
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert!(handled.contains(&good.envelope.event_id));
    assert!(
        handled.contains(&poison2.envelope.event_id),
        "same event, same id"
    );
    assert!(
        !handled.contains(&replayed.envelope.event_id),
        "replayed events are skipped"
    );
    assert!(!handled.contains(&poison.envelope.event_id));

    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}
