//! Bus conformance suite: at-least-once delivery by consumer group, redelivery of unacked
//! events (also across a restart), per-topic and per-aggregate order, live watching, delivery
//! of events that were stored but never published, and dedupe of events published twice (by
//! one bus or by two). Run with [`bus_test_suite!`](crate::bus_test_suite).
//!
//! Negative checks ("nothing else arrives") wait a short, fixed quiet period; positive checks
//! only have a generous deadline so that they cannot hang.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::event::EventType;
use crate::ports::{BusLog, Delivery, EventBus};
use crate::testsuite::store::{small_event, Fixture};
use crate::StoredEvent;

/// Generates one `#[tokio::test]` per bus case.
///
/// - `store: S, bus: B`: `S` is an expression giving a future of `Fixture<dyn BusLog>` (a
///   fresh store per test); `B` a closure `Fn(Arc<dyn BusLog>) -> Arc<dyn EventBus>`
///   (called again to simulate a restart), for a bus that keeps its consumer offsets in the
///   event store.
/// - `fixture: F`: `F` is an expression giving a future of [`BusFixture`].
/// - `fixture: F, partitioned`: the same for a bus whose topics have several partitions, where
///   order holds per aggregate only: every case except `order_per_topic_is_preserved` (the
///   adapter should also run the full suite over single-partition topics).
#[macro_export]
macro_rules! bus_test_suite {
    (store: $store:expr, bus: $bus:expr $(,)?) => {
        $crate::bus_test_suite!(fixture: async {
            $crate::testsuite::bus::BusFixture::over_store($store.await, $bus)
        });
    };
    (fixture: $fixture:expr $(,)?) => {
        $crate::bus_test_suite!(fixture: $fixture, partitioned);
        $crate::bus_test_suite!(@cases $fixture; order_per_topic_is_preserved);
    };
    (fixture: $fixture:expr, partitioned $(,)?) => {
        $crate::bus_test_suite!(@cases $fixture;
            published_event_reaches_one_consumer,
            every_group_gets_every_event,
            consumers_of_one_group_split_the_events,
            unsettled_delivery_is_redelivered,
            acked_event_is_not_redelivered,
            restart_redelivers_only_unacked_events,
            order_per_aggregate_holds_while_an_event_is_unsettled,
            watch_sees_live_events_only,
            stored_but_unpublished_events_are_delivered,
            publishing_twice_delivers_once,
            a_copy_published_by_another_bus_is_delivered_once,
        );
    };
    (@cases $fixture:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testsuite::bus::BusFixture = $fixture.await;
                $crate::testsuite::bus::$case(&fixture).await;
            }
        )+
    };
}

type Make = Box<dyn Fn(Store) -> Arc<dyn EventBus> + Send + Sync>;
type Committed = Box<dyn Fn(&str, EventType, i64) -> BoxFuture<'static, bool> + Send + Sync>;

/// A bus adapter under test: a fresh event store, how to make a bus over it (called again to
/// simulate a restart), how to tell that a group's acknowledgements are committed, and
/// whatever must outlive the test (a temporary directory, a broker process).
pub struct BusFixture {
    pub store: Store,
    make: Make,
    committed: Committed,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl BusFixture {
    /// A bus that commits consumer offsets to the event store.
    pub fn over_store(
        fixture: Fixture<dyn BusLog>,
        make: impl Fn(Store) -> Arc<dyn EventBus> + Send + Sync + 'static,
    ) -> Self {
        let store = fixture.store.clone();
        let offsets = store.clone();
        Self {
            store,
            make: Box::new(make),
            committed: Box::new(move |group, topic, upto| {
                let store = offsets.clone();
                let group = group.to_owned();
                Box::pin(async move {
                    store
                        .consumer_offset(&group, topic)
                        .await
                        .is_ok_and(|offset| offset >= upto)
                })
            }),
            _guard: Some(Box::new(fixture)),
        }
    }

    /// A bus with its own offset storage: `committed(group, topic, upto)` answers whether
    /// every event of `topic` with `seq <= upto` is committed by `group`.
    pub fn new(
        store: Store,
        make: impl Fn(Store) -> Arc<dyn EventBus> + Send + Sync + 'static,
        committed: impl Fn(&str, EventType, i64) -> BoxFuture<'static, bool> + Send + Sync + 'static,
        guard: impl Any + Send + Sync,
    ) -> Self {
        Self {
            store,
            make: Box::new(make),
            committed: Box::new(committed),
            _guard: Some(Box::new(guard)),
        }
    }

    fn bus(&self) -> Arc<dyn EventBus> {
        (self.make)(self.store.clone())
    }
}

const DEADLINE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);
const QUEUED: EventType = EventType::ExecutionQueued;
const STORED: EventType = EventType::ResultStored;

type Store = Arc<dyn BusLog>;
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

pub async fn published_event_reaches_one_consumer(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(store, &bus, QUEUED, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event, event);
    assert_eq!(d.attempt, 1);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn every_group_gets_every_event(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut a = bus.subscribe(&[QUEUED], "group-a").await.unwrap();
    let mut b = bus.subscribe(&[QUEUED, STORED], "group-b").await.unwrap();
    let first = emit(store, &bus, QUEUED, "e1").await;
    let second = emit(store, &bus, STORED, "e1").await;
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

pub async fn consumers_of_one_group_split_the_events(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
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
        expected.insert(emit(store, &bus, QUEUED, &format!("e{i}")).await.seq);
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

pub async fn unsettled_delivery_is_redelivered(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(store, &bus, QUEUED, "e1").await;
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

pub async fn acked_event_is_not_redelivered(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let first = emit(store, &bus, QUEUED, "e1").await;
    next(&mut sub).await.ack();
    let second = emit(store, &bus, QUEUED, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event.seq, second.seq, "seq {} came back", first.seq);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn restart_redelivers_only_unacked_events(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let first = emit(store, &bus, QUEUED, "e1").await;
    let second = emit(store, &bus, QUEUED, "e2").await;
    let third = emit(store, &bus, QUEUED, "e3").await;
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
    while !(f.committed)("g", QUEUED, second.seq).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks were not committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(unacked);

    let bus = f.bus();
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

pub async fn order_per_topic_is_preserved(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let mut published = Vec::new();
    for i in 0..30 {
        published.push(emit(store, &bus, QUEUED, &format!("e{}", i % 3)).await.seq);
    }
    let mut received = Vec::new();
    for _ in 0..published.len() {
        let d = next(&mut sub).await;
        received.push(d.event.seq);
        d.ack();
    }
    assert_eq!(received, published);
}

pub async fn watch_sees_live_events_only(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    emit(store, &bus, QUEUED, "old").await;
    let mut watch = bus.watch(&[QUEUED]).await.unwrap();
    let mut other = bus.watch(&[QUEUED]).await.unwrap();
    emit(store, &bus, STORED, "e1").await;
    let live = emit(store, &bus, QUEUED, "e1").await;
    for w in [&mut watch, &mut other] {
        let got = tokio::time::timeout(DEADLINE, w.next())
            .await
            .expect("no live event");
        assert_eq!(got, Some(live.clone()));
    }
    assert!(tokio::time::timeout(QUIET, watch.next()).await.is_err());
}

pub async fn stored_but_unpublished_events_are_delivered(f: &BusFixture) {
    let store = &f.store;
    let before = store
        .append_event(&small_event(QUEUED, "e1"))
        .await
        .unwrap();
    let bus = f.bus();
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

pub async fn publishing_twice_delivers_once(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(store, &bus, QUEUED, "e1").await;
    bus.publish(&event).await.unwrap();
    next(&mut sub).await.ack();
    bus.publish(&event).await.unwrap();
    assert_quiet(&mut sub).await;
}

pub async fn order_per_aggregate_holds_while_an_event_is_unsettled(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let a1 = emit(store, &bus, QUEUED, "a").await;
    let a2 = emit(store, &bus, QUEUED, "a").await;
    let b1 = emit(store, &bus, QUEUED, "b").await;
    // Two deliveries, in either order (the aggregates may sit in different partitions): a1
    // and b1, never a2 while a1 is unsettled.
    let mut held = None;
    for _ in 0..2 {
        let d = next(&mut sub).await;
        assert_ne!(d.event.seq, a2.seq, "a's second event overtook its first");
        if d.event.seq == a1.seq {
            held = Some(d);
        } else {
            assert_eq!(d.event.seq, b1.seq);
            d.ack();
        }
    }
    let held = held.expect("a1 was not delivered");
    assert_quiet(&mut sub).await;
    // A nacked event comes back before the later events of its aggregate.
    held.nack();
    let d = next(&mut sub).await;
    assert_eq!((d.event.seq, d.attempt), (a1.seq, 2));
    d.ack();
    let d = next(&mut sub).await;
    assert_eq!(d.event.seq, a2.seq);
    d.ack();
    assert_quiet(&mut sub).await;
}

pub async fn a_copy_published_by_another_bus_is_delivered_once(f: &BusFixture) {
    let store = &f.store;
    let bus = f.bus();
    let other = f.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.unwrap();
    let event = emit(store, &bus, QUEUED, "e1").await;
    other.publish(&event).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, event);
    d.ack();
    other.publish(&event).await.unwrap();
    assert_quiet(&mut sub).await;
}
