//! The bus conformance suite for `MemoryBus` over a real SQLite event store (a fresh database
//! file per test).

use std::sync::Arc;

use integr8s_bus::MemoryBus;
use integr8s_core::ports::{BusLog, EventBus};
use integr8s_core::testsuite::store::Fixture;
use integr8s_store::SqliteStore;

async fn sqlite_event_store() -> Fixture<dyn BusLog> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    Fixture::with_guard(Arc::new(store), dir)
}

fn memory_bus(store: Arc<dyn BusLog>) -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(store))
}

integr8s_core::bus_test_suite!(store: sqlite_event_store(), bus: memory_bus);

/// The published log of the in-process bus: a consumer that takes published events from memory
/// does not skip one that was stored between them but never published (a gap in the log).
mod published_log {
    use std::time::Duration;

    use futures::StreamExt;
    use integr8s_core::event::{Envelope, EventMetadata, EventPayload, EventType};
    use integr8s_core::ports::Delivery;
    use integr8s_core::StoredEvent;

    const QUEUED: EventType = EventType::ExecutionQueued;
    const DEADLINE: Duration = Duration::from_secs(10);

    fn queued(execution_id: &str) -> Envelope {
        let payload = EventPayload::ExecutionQueued {
            execution_id: execution_id.to_owned(),
            position_in_queue: None,
            estimated_start_time: None,
        };
        Envelope::new(payload, EventMetadata::new("test", None))
    }

    async fn next(stream: &mut futures::stream::BoxStream<'static, Delivery>) -> StoredEvent {
        let delivery = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("no delivery in time")
            .expect("subscription ended");
        let event = delivery.event.clone();
        delivery.ack();
        event
    }

    #[tokio::test]
    async fn an_unpublished_event_between_published_ones_is_delivered_in_order() {
        let f = super::sqlite_event_store().await;
        let bus = super::memory_bus(f.store.clone());
        let mut sub = bus.subscribe(&[QUEUED], "g").await.expect("subscribe");
        let mut published = Vec::new();
        for round in 0..3 {
            let first = f.store.append_event(&queued("a")).await.expect("append");
            bus.publish(&first).await.expect("publish");
            // Stored, never published (as if its publisher stopped in between), and one of
            // another topic, so that the log has gaps of both kinds.
            let lost = f.store.append_event(&queued("b")).await.expect("append");
            let other = Envelope::new(
                EventPayload::ExecutionStarted {
                    execution_id: format!("c{round}"),
                    pod_name: format!("pod-{round}"),
                    node_name: None,
                    container_id: None,
                },
                EventMetadata::new("test", None),
            );
            f.store.append_event(&other).await.expect("append");
            let third = f.store.append_event(&queued("a")).await.expect("append");
            bus.publish(&third).await.expect("publish");
            published.extend([first.seq, lost.seq, third.seq]);
        }
        let mut received = Vec::new();
        for _ in 0..published.len() {
            received.push(next(&mut sub).await.seq);
        }
        assert_eq!(received, published);
    }
}
