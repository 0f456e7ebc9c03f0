//! Bus conformance suite: at-least-once delivery by consumer group, redelivery of unacked
//! events (also across a restart), per-topic order, live watching, and delivery of events that
//! were stored but never published. Run with [`bus_test_suite!`](crate::bus_test_suite).
//!
//! Negative checks ("nothing else arrives") wait a short, fixed quiet period; positive checks
//! only have a generous deadline so that they cannot hang.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;

use crate::event::EventType;
use crate::ports::{Delivery, EventBus, EventStore};
use crate::testsuite::store::small_event;
use crate::StoredEvent;

/// Generates one `#[tokio::test]` per bus case. `store:` is an expression giving a future of
/// `Fixture<dyn EventStore>` (a fresh store per test); `bus:` is a closure
/// `Fn(Arc<dyn EventStore>) -> Arc<dyn EventBus>` (called again to simulate a restart).
#[macro_export]
macro_rules! bus_test_suite {
    (store: $store:expr, bus: $bus:expr $(,)?) => {
        $crate::bus_test_suite!(@cases $store, $bus;
            published_event_reaches_one_consumer,
            every_group_gets_every_event,
            consumers_of_one_group_split_the_events,
            unsettled_delivery_is_redelivered,
            acked_event_is_not_redelivered,
            restart_redelivers_only_unacked_events,
            order_per_topic_is_preserved,
            watch_sees_live_events_only,
            stored_but_unpublished_events_are_delivered,
            publishing_twice_delivers_once,
        );
    };
    (@cases $store:expr, $bus:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testsuite::store::Fixture<dyn $crate::ports::EventStore> =
                    $store.await;
                $crate::testsuite::bus::$case(fixture.store.clone(), $bus).await;
            }
        )+
    };
}

const DEADLINE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);
const QUEUED: EventType = EventType::ExecutionQueued;
const STORED: EventType = EventType::ResultStored;

type Store = Arc<dyn EventStore>;
type Deliveries = BoxStream<'static, Delivery>;

/// Stores an event and publishes it (the outbox order).
async fn emit(
    store: &Store,
    bus: &Arc<dyn EventBus>,
    kind: EventType,
    aggregate: &str,
) -> StoredEvent {
    let stored = store
        .append_event(&small_event(kind, aggregate))
        .await
        .unwrap();
    bus.publish(&stored).await.unwrap();
    stored
}

async fn next(stream: &mut Deliveries) -> Delivery {
    match tokio::time::timeout(DEADLINE, stream.next()).await {
        Ok(Some(delivery)) => delivery,
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no delivery within {DEADLINE:?}"),
    }
}

async fn assert_quiet(stream: &mut Deliveries) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!(
            "unexpected delivery of seq {} (attempt {})",
            d.event.seq, d.attempt
        );
    }
}

pub async fn published_event_reaches_one_consumer(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(&store, &bus, QUEUED, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event, event);
    assert_eq!(d.attempt, 1);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn every_group_gets_every_event(store: Store, make: impl Fn(Store) -> Arc<dyn EventBus>) {
    let bus = make(store.clone());
    let mut a = bus.subscribe(&[QUEUED], "group-a").await.unwrap();
    let mut b = bus.subscribe(&[QUEUED, STORED], "group-b").await.unwrap();
    let first = emit(&store, &bus, QUEUED, "e1").await;
    let second = emit(&store, &bus, STORED, "e1").await;
    let d = next(&mut a).await;
    assert_eq!(d.event.seq, first.seq);
    d.ack();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = next(&mut b).await;
        got.push(d.event.seq);
        d.ack();
    }
    got.sort();
    assert_eq!(got, vec![first.seq, second.seq]);
    assert_quiet(&mut a).await;
}

pub async fn consumers_of_one_group_split_the_events(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let mut sub = bus.subscribe(&[QUEUED], "shared").await.unwrap();
        let seen = seen.clone();
        consumers.push(tokio::spawn(async move {
            while let Some(d) = sub.next().await {
                seen.lock().unwrap().push(d.event.seq);
                d.ack();
            }
        }));
    }
    let mut expected = HashSet::new();
    for i in 0..20 {
        expected.insert(emit(&store, &bus, QUEUED, &format!("e{i}")).await.seq);
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while seen.lock().unwrap().len() < expected.len() {
        assert!(tokio::time::Instant::now() < deadline, "events missing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(QUIET).await;
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an event went to two consumers of one group"
    );
    assert_eq!(unique, expected);
    for c in consumers {
        c.abort();
    }
}

pub async fn unsettled_delivery_is_redelivered(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(&store, &bus, QUEUED, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!((d.event.seq, d.attempt), (event.seq, 1));
    d.nack();
    let d = next(&mut sub).await;
    assert_eq!((d.event.seq, d.attempt), (event.seq, 2));
    drop(d);
    let d = next(&mut sub).await;
    assert_eq!((d.event.seq, d.attempt), (event.seq, 3));
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn acked_event_is_not_redelivered(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let first = emit(&store, &bus, QUEUED, "e1").await;
    next(&mut sub).await.ack();
    let second = emit(&store, &bus, QUEUED, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event.seq, second.seq, "seq {} came back", first.seq);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn restart_redelivers_only_unacked_events(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let first = emit(&store, &bus, QUEUED, "e1").await;
    let second = emit(&store, &bus, QUEUED, "e2").await;
    let third = emit(&store, &bus, QUEUED, "e3").await;
    let mut unacked = None;
    for _ in 0..3 {
        let d = next(&mut sub).await;
        if d.event.seq == third.seq {
            unacked = Some(d);
        } else {
            d.ack();
        }
    }
    assert!(unacked.is_some());
    // Stop the consumer and the bus, then wait until the acks are committed.
    drop(sub);
    drop(bus);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store.consumer_offset("g", QUEUED).await.unwrap() < second.seq {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks were not committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(unacked);

    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(
        d.event.seq, third.seq,
        "seq {} was acked before the restart",
        first.seq
    );
    assert_eq!(d.attempt, 1);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn order_per_topic_is_preserved(store: Store, make: impl Fn(Store) -> Arc<dyn EventBus>) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let mut published = Vec::new();
    for i in 0..30 {
        published.push(emit(&store, &bus, QUEUED, &format!("e{}", i % 3)).await.seq);
    }
    let mut received = Vec::new();
    for _ in 0..published.len() {
        let d = next(&mut sub).await;
        received.push(d.event.seq);
        d.ack();
    }
    assert_eq!(received, published);
}

pub async fn watch_sees_live_events_only(store: Store, make: impl Fn(Store) -> Arc<dyn EventBus>) {
    let bus = make(store.clone());
    emit(&store, &bus, QUEUED, "old").await;
    let mut watch = bus.watch(&[QUEUED]).await.unwrap();
    let mut other = bus.watch(&[QUEUED]).await.unwrap();
    emit(&store, &bus, STORED, "e1").await;
    let live = emit(&store, &bus, QUEUED, "e1").await;
    for w in [&mut watch, &mut other] {
        let got = tokio::time::timeout(DEADLINE, w.next())
            .await
            .expect("no live event");
        assert_eq!(got, Some(live.clone()));
    }
    assert!(tokio::time::timeout(QUIET, watch.next()).await.is_err());
}

pub async fn stored_but_unpublished_events_are_delivered(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let before = store
        .append_event(&small_event(QUEUED, "e1"))
        .await
        .unwrap();
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, before);
    d.ack();
    // As if the process had crashed between storing and publishing.
    let lost = store
        .append_event(&small_event(QUEUED, "e2"))
        .await
        .unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, lost);
    d.ack();
}

pub async fn publishing_twice_delivers_once(
    store: Store,
    make: impl Fn(Store) -> Arc<dyn EventBus>,
) {
    let bus = make(store.clone());
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(&store, &bus, QUEUED, "e1").await;
    bus.publish(&event).await.unwrap();
    next(&mut sub).await.ack();
    bus.publish(&event).await.unwrap();
    assert_quiet(&mut sub).await;
}
