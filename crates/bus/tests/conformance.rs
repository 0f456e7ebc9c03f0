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
    use integr8s_core::ports::{Delivery, EventBus};
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

    /// A worker holds at most its byte bound of unsettled events: large outputs wait in the
    /// store until room is made, and none is lost or reordered.
    #[tokio::test]
    async fn large_events_are_held_back_by_the_byte_bound_and_none_is_lost() {
        const MIB: usize = 1024 * 1024;
        let f = super::sqlite_event_store().await;
        let config = integr8s_bus::BusConfig {
            max_in_flight_bytes: 3 * MIB,
            ..integr8s_bus::BusConfig::default()
        };
        let bus = integr8s_bus::MemoryBus::with_config(f.store.clone(), config);
        let completed = EventType::ExecutionCompleted;
        let mut sub = bus.subscribe(&[completed], "g").await.expect("subscribe");
        let mut stored = Vec::new();
        for i in 0..6 {
            let payload = EventPayload::ExecutionCompleted {
                execution_id: format!("large-{i}"),
                exit_code: 0,
                output: integr8s_core::event::RunOutput {
                    stdout: "x".repeat(MIB),
                    ..Default::default()
                },
            };
            let env = Envelope::new(payload, EventMetadata::new("test", None));
            let event = f.store.append_event(&env).await.expect("append");
            bus.publish(&event).await.expect("publish");
            stored.push(event.seq);
        }
        // Two of 1 MiB fit in 3 MiB, a third does not: held until one is settled.
        let first = take(&mut sub).await;
        let second = take(&mut sub).await;
        let third = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
        assert!(
            third.is_err(),
            "a third large event was handed out before room was made"
        );
        let mut received = vec![first.event.seq, second.event.seq];
        first.ack();
        second.ack();
        while received.len() < stored.len() {
            let delivery = take(&mut sub).await;
            received.push(delivery.event.seq);
            delivery.ack();
        }
        assert_eq!(received, stored);
    }

    async fn take(sub: &mut futures::stream::BoxStream<'static, Delivery>) -> Delivery {
        tokio::time::timeout(DEADLINE, sub.next())
            .await
            .expect("no delivery in time")
            .expect("subscription ended")
    }
}
