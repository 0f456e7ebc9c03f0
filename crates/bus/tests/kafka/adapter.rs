//! Cases of the Kafka adapter beyond the port's suite: topic creation, the DLQ topic, a clean
//! rebalance, and the outbox relay's durable position.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use integr8s_bus::kafka::{create_topics, KafkaBus};
use integr8s_core::ports::{Delivery, EventBus};
use integr8s_core::testsuite::store::small_event;
use integr8s_core::{EventType, StoredEvent};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::fixture::{client, header, seq_of, Setup, TIMEOUT};

const QUEUED: EventType = EventType::ExecutionQueued;
const QUIET: Duration = Duration::from_millis(400);

async fn emit(setup: &Setup, bus: &Arc<dyn EventBus>, aggregate: &str) -> StoredEvent {
    let stored = setup
        .store
        .append_event(&small_event(QUEUED, aggregate))
        .await
        .expect("append");
    bus.publish(&stored).await.expect("publish");
    stored
}

async fn next(sub: &mut futures::stream::BoxStream<'static, Delivery>) -> Delivery {
    tokio::time::timeout(TIMEOUT, sub.next())
        .await
        .expect("no delivery in time")
        .expect("subscription ended")
}

async fn assert_quiet(sub: &mut futures::stream::BoxStream<'static, Delivery>) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("unexpected delivery of seq {}", d.event.seq);
    }
}

/// Every message of `topic` (all partitions), read from the beginning until `until` holds or
/// the deadline passes.
fn read_topic(
    setup: &Setup,
    topic: &str,
    until: impl Fn(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let reader: BaseConsumer = client(&setup.config)
        .set("group.id", format!("reader-{}", integr8s_core::new_id()))
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..setup.config.partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    reader.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !until(&got) && Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            got.push(m.detach());
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_topics_twice_finds_them_existing_and_ping_tells_a_frozen_broker() {
    let setup = Setup::new(2).await;
    let again = create_topics(&setup.config).await.expect("create again");
    assert!(again.created.is_empty(), "{:?}", again.created);
    let mut existing = again.existing;
    existing.sort();
    let mut all = setup.config.all_topics();
    all.sort();
    assert_eq!(existing, all);

    let bus = KafkaBus::new(setup.store.clone(), setup.config.clone()).expect("bus");
    bus.ping().await.expect("the broker answers");
    setup.broker.signal("-STOP");
    let frozen = bus.ping().await;
    setup.broker.signal("-CONT");
    assert!(frozen.is_err(), "a frozen broker answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_message_goes_to_the_dlq_topic_and_the_next_is_delivered() {
    let setup = Setup::new(1).await;
    let topic = setup.config.topic(QUEUED);
    let raw: ThreadedProducer<DefaultProducerContext> =
        client(&setup.config).create().expect("producer");
    raw.send(BaseRecord::to(&topic).key("junk").payload("not an event"))
        .map_err(|(e, _)| e)
        .expect("produce junk");
    raw.flush(TIMEOUT).expect("flush");
    let bus = setup.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.expect("subscribe");
    let good = emit(&setup, &bus, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event, good);
    d.ack();
    let dlq = read_topic(&setup, &setup.config.dlq_topic(), |m| !m.is_empty());
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].payload(), Some(&b"not an event"[..]));
    assert_eq!(dlq[0].key(), Some(&b"junk"[..]));
    assert_eq!(
        header(&dlq[0], "dlq_reason").as_deref(),
        Some("undecodable message")
    );
    assert_eq!(header(&dlq[0], "dlq_group").as_deref(), Some("g"));
    assert_eq!(header(&dlq[0], "dlq_original_topic"), Some(topic));
    assert_quiet(&mut sub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_context_travels_as_a_traceparent_header_and_back() {
    let setup = Setup::new(1).await;
    let topic = setup.config.topic(QUEUED);
    let bus = setup.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.expect("subscribe");
    let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut event = small_event(QUEUED, "e1");
    event.metadata.traceparent = Some(traced.to_owned());
    let stored = setup.store.append_event(&event).await.expect("append");
    bus.publish(&stored).await.expect("publish");
    let d = next(&mut sub).await;
    assert_eq!(
        d.event.envelope.metadata.traceparent.as_deref(),
        Some(traced)
    );
    d.ack();
    let on_wire = read_topic(&setup, &topic, |m| !m.is_empty());
    assert_eq!(header(&on_wire[0], "traceparent").as_deref(), Some(traced));

    // A producer that sets only the header (the value has no `metadata.traceparent`).
    let from_header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let bare = setup
        .store
        .append_event(&small_event(QUEUED, "e2"))
        .await
        .expect("append");
    let raw: ThreadedProducer<DefaultProducerContext> =
        client(&setup.config).create().expect("producer");
    let seq = bare.seq.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "seq",
            value: Some(seq.as_str()),
        })
        .insert(Header {
            key: "traceparent",
            value: Some(from_header),
        });
    let value = serde_json::to_vec(&bare.envelope).expect("json");
    raw.send(
        BaseRecord::to(&topic)
            .key("e2")
            .payload(&value)
            .headers(headers),
    )
    .map_err(|(e, _)| e)
    .expect("produce");
    raw.flush(TIMEOUT).expect("flush");
    let d = next(&mut sub).await;
    assert_eq!(d.event.envelope.event_id, bare.envelope.event_id);
    assert_eq!(
        d.event.envelope.metadata.traceparent.as_deref(),
        Some(from_header)
    );
    d.ack();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_nacked_max_attempts_times_goes_to_the_dlq_topic() {
    let setup = Setup::with(1, |c| c.max_attempts = 2).await;
    let bus = setup.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.expect("subscribe");
    let poison = emit(&setup, &bus, "e1").await;
    for attempt in 1..=2 {
        let d = next(&mut sub).await;
        assert_eq!((d.event.seq, d.attempt), (poison.seq, attempt));
        d.nack();
    }
    // The poisoned event no longer holds up its aggregate.
    let after = emit(&setup, &bus, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event.seq, after.seq);
    d.ack();
    let dlq = read_topic(&setup, &setup.config.dlq_topic(), |m| !m.is_empty());
    assert_eq!(dlq.len(), 1);
    assert_eq!(seq_of(&dlq[0]), Some(poison.seq));
    assert_eq!(
        header(&dlq[0], "dlq_reason").as_deref(),
        Some("not acknowledged after 2 deliveries")
    );
    assert_eq!(
        header(&dlq[0], "event_id").as_deref(),
        Some(poison.envelope.event_id.as_str())
    );
    assert_quiet(&mut sub).await;
}

/// Collects and acks everything a subscription receives.
fn drain(
    mut sub: futures::stream::BoxStream<'static, Delivery>,
    seen: Arc<Mutex<Vec<i64>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            seen.lock().expect("seen").push(d.event.seq);
            d.ack();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_hands_partitions_over_without_redelivering_acked_events() {
    let setup = Setup::new(3).await;
    let bus = setup.bus();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let first = drain(
        bus.subscribe(&[QUEUED], "g").await.expect("a"),
        seen.clone(),
    );
    let mut expected = HashSet::new();
    for i in 0..10 {
        expected.insert(emit(&setup, &bus, &format!("e{i}")).await.seq);
    }
    let deadline = Instant::now() + TIMEOUT;
    while seen.lock().expect("seen").len() < 10 {
        assert!(Instant::now() < deadline, "first events missing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second member joins: the first gives partitions up, committing what it acked.
    let second = drain(
        bus.subscribe(&[QUEUED], "g").await.expect("b"),
        seen.clone(),
    );
    for i in 10..30 {
        expected.insert(emit(&setup, &bus, &format!("e{i}")).await.seq);
    }
    let deadline = Instant::now() + TIMEOUT;
    while seen.lock().expect("seen").len() < expected.len() {
        assert!(Instant::now() < deadline, "events missing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(QUIET).await;
    let seen = seen.lock().expect("seen").clone();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for seq in &seen {
        *counts.entry(*seq).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(counts.keys().copied().collect::<HashSet<_>>(), expected);
    first.abort();
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_a_stored_event_once_and_keeps_its_position() {
    let setup = Setup::new(1).await;
    // Stored by a writer that died before publishing.
    let lost = setup
        .store
        .append_event(&small_event(QUEUED, "e1"))
        .await
        .expect("append");
    let relay_group = setup.config.group_id("outbox-relay");
    let bus = setup.bus();
    let deadline = Instant::now() + TIMEOUT;
    while setup
        .store
        .consumer_offset(&relay_group, EventType::ExecutionRequested)
        .await
        .expect("position")
        < lost.seq
    {
        assert!(Instant::now() < deadline, "relay position did not move");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(bus);
    // A relay started later begins at the stored position: no second copy.
    let later = setup.bus();
    tokio::time::sleep(setup.config.relay_grace * 3).await;
    drop(later);
    let topic = setup.config.topic(QUEUED);
    let copies = read_topic(&setup, &topic, |_| false);
    let ids: Vec<_> = copies
        .iter()
        .filter_map(|m| header(m, "event_id"))
        .collect();
    assert_eq!(ids, vec![lost.envelope.event_id.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_events_reach_two_members_in_order_per_aggregate() {
    const EVENTS: usize = 500;
    const AGGREGATES: usize = 10;
    let setup = Setup::new(3).await;
    let bus = setup.bus();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let members = [
        drain(
            bus.subscribe(&[QUEUED], "g").await.expect("a"),
            seen.clone(),
        ),
        drain(
            bus.subscribe(&[QUEUED], "g").await.expect("b"),
            seen.clone(),
        ),
    ];
    let mut by_aggregate: HashMap<i64, usize> = HashMap::new();
    let started = Instant::now();
    for i in 0..EVENTS {
        let event = emit(&setup, &bus, &format!("agg-{}", i % AGGREGATES)).await;
        by_aggregate.insert(event.seq, i % AGGREGATES);
    }
    let published = started.elapsed();
    let deadline = Instant::now() + TIMEOUT * 3;
    loop {
        let unique: HashSet<i64> = seen.lock().expect("seen").iter().copied().collect();
        if unique.len() == EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} delivered",
            unique.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = started.elapsed();
    let seen_all = seen.clone();
    let seen = seen.lock().expect("seen").clone();
    // At least once: a delivery handed out during a rebalance may come again, but an
    // aggregate's events arrive in the order they were published.
    let mut first = HashSet::new();
    let mut last_per_aggregate: HashMap<usize, i64> = HashMap::new();
    for seq in &seen {
        if !first.insert(*seq) {
            continue;
        }
        let aggregate = by_aggregate[seq];
        if let Some(previous) = last_per_aggregate.insert(aggregate, *seq) {
            assert!(
                previous < *seq,
                "aggregate {aggregate}: {seq} after {previous}"
            );
        }
    }
    // Round trips once the group is settled: publish, then wait for the delivery's ack.
    let mut trips = Vec::new();
    for i in 0..20 {
        let before = seen_count(&seen_all);
        let start = Instant::now();
        emit(&setup, &bus, &format!("trip-{i}")).await;
        while seen_count(&seen_all) == before {
            assert!(start.elapsed() < TIMEOUT, "round trip {i} lost");
            tokio::task::yield_now().await;
        }
        trips.push(start.elapsed());
    }
    trips.sort();
    println!(
        "store + publish + delivery round trip on a settled group: median {:?}, max {:?}",
        trips[trips.len() / 2],
        trips[trips.len() - 1]
    );
    println!(
        "{EVENTS} events over {AGGREGATES} aggregates, 3 partitions, 2 members: published one by one in {published:?} ({:.2} ms each), all delivered and acked after {delivered:?}, {} redelivered",
        published.as_secs_f64() * 1000.0 / EVENTS as f64,
        seen.len() - EVENTS
    );
    for m in members {
        m.abort();
    }
}

fn seen_count(seen: &Mutex<Vec<i64>>) -> usize {
    seen.lock().expect("seen").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_while_the_broker_is_unreachable_flow_when_it_returns() {
    let setup = Setup::with(1, |c| c.request_timeout = Duration::from_secs(1)).await;
    let bus = setup.bus();
    let mut sub = bus.subscribe(&[QUEUED], "g").await.expect("subscribe");
    let before = emit(&setup, &bus, "e1").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event.seq, before.seq);
    d.ack();

    setup.broker.signal("-STOP");
    let stored = setup
        .store
        .append_event(&small_event(QUEUED, "e2"))
        .await
        .expect("append");
    let published = bus.publish(&stored).await;
    setup.broker.signal("-CONT");
    assert!(published.is_err(), "a frozen broker acknowledged a message");

    let d = next(&mut sub).await;
    assert_eq!(d.event, stored);
    d.ack();
    assert_quiet(&mut sub).await;
}
