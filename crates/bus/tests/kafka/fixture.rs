//! A Kafka bus over a fresh SQLite event store and a broker of its own, with topics under a
//! unique prefix; and a way to read what a group has committed, straight from the broker.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use integr8s_bus::kafka::{create_topics, KafkaBus, KafkaConfig};
use integr8s_core::ports::{BusLog, EventBus};
use integr8s_core::testsuite::bus::BusFixture;
use integr8s_core::EventType;
use integr8s_store::SqliteStore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use integr8s_bus::testing::Broker;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn config(addr: &str, partitions: i32) -> KafkaConfig {
    let prefix = format!("t{}.", &integr8s_core::new_id()[..8]);
    let mut c = KafkaConfig::new(addr, prefix);
    c.partitions = partitions;
    // The broker holds a group's first join for about half the session timeout.
    c.session_timeout = Duration::from_millis(3000);
    c.redelivery_step = Duration::from_millis(50);
    c.commit_interval = Duration::from_millis(20);
    c.rebalance_grace = Duration::from_secs(2);
    c.relay_interval = Duration::from_millis(100);
    c.relay_grace = Duration::from_millis(500);
    c.fetch_wait = Duration::from_millis(10);
    c
}

pub async fn sqlite() -> (Arc<dyn BusLog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

/// A broker, a store and the bus's topics, for one test.
pub struct Setup {
    pub config: KafkaConfig,
    pub store: Arc<dyn BusLog>,
    pub broker: Broker,
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub async fn new(partitions: i32) -> Self {
        Self::with(partitions, |_| {}).await
    }

    pub async fn with(partitions: i32, tune: impl FnOnce(&mut KafkaConfig)) -> Self {
        let broker = Broker::start();
        let (store, dir) = sqlite().await;
        let mut config = config(&broker.addr, partitions);
        tune(&mut config);
        create_topics(&config).await.expect("create topics");
        Self {
            config,
            store,
            broker,
            dir,
        }
    }

    pub fn bus(&self) -> Arc<dyn EventBus> {
        Arc::new(KafkaBus::new(self.store.clone(), self.config.clone()).expect("kafka bus"))
    }

    pub fn into_fixture(self) -> BusFixture {
        let Setup {
            config,
            store,
            broker,
            dir,
        } = self;
        let make_config = config.clone();
        let make = move |store: Arc<dyn BusLog>| -> Arc<dyn EventBus> {
            Arc::new(KafkaBus::new(store, make_config.clone()).expect("kafka bus"))
        };
        let offsets_store = store.clone();
        let committed =
            move |group: &str, topic: EventType, upto: i64| -> BoxFuture<'static, bool> {
                Box::pin(committed_through(
                    config.clone(),
                    offsets_store.clone(),
                    group.to_owned(),
                    topic,
                    upto,
                ))
            };
        BusFixture::new(store, make, committed, (broker, dir))
    }
}

pub async fn bus_fixture(partitions: i32) -> BusFixture {
    Setup::new(partitions).await.into_fixture()
}

pub fn client(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("enable.auto.commit", "false");
    c
}

/// Whether every event of `topic` with `seq <= upto` sits below `group`'s committed offset of
/// its partition.
async fn committed_through(
    config: KafkaConfig,
    store: Arc<dyn BusLog>,
    group: String,
    topic: EventType,
    upto: i64,
) -> bool {
    let expected: HashSet<i64> = store
        .events_after(&[topic], 0, 10_000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.seq)
        .filter(|seq| *seq <= upto)
        .collect();
    let committed = tokio::task::spawn_blocking(move || committed_seqs(&config, &group, topic))
        .await
        .expect("committed offsets");
    expected.is_subset(&committed)
}

/// The `seq` header of a message.
pub fn seq_of(m: &impl Message) -> Option<i64> {
    header(m, "seq")?.parse().ok()
}

pub fn header(m: &impl Message, name: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn committed_seqs(config: &KafkaConfig, group: &str, topic: EventType) -> HashSet<i64> {
    let name = config.topic(topic);
    let offsets: BaseConsumer = client(config)
        .set("group.id", config.group_id(group))
        .create()
        .expect("consumer");
    let metadata = offsets
        .fetch_metadata(Some(&name), TIMEOUT)
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition(&name, p.id());
    }
    let committed = offsets
        .committed_offsets(tpl, TIMEOUT)
        .expect("committed offsets");
    let ends: HashMap<i32, i64> = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(end) if end > 0 => Some((e.partition(), end)),
            _ => None,
        })
        .collect();
    read_below(config, &name, &ends)
}

/// The seqs of the messages of `topic` below `ends` (offset per partition).
pub fn read_below(config: &KafkaConfig, topic: &str, ends: &HashMap<i32, i64>) -> HashSet<i64> {
    let mut seqs = HashSet::new();
    if ends.is_empty() {
        return seqs;
    }
    let reader: BaseConsumer = client(config)
        .set("group.id", format!("reader-{}", integr8s_core::new_id()))
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for partition in ends.keys() {
        tpl.add_partition_offset(topic, *partition, Offset::Beginning)
            .expect("partition");
    }
    reader.assign(&tpl).expect("assign");
    let mut remaining: HashSet<i32> = ends.keys().copied().collect();
    let deadline = Instant::now() + TIMEOUT;
    while !remaining.is_empty() && Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let end = ends[&m.partition()];
            if m.offset() < end {
                seqs.extend(seq_of(&m));
            }
            if m.offset() >= end - 1 {
                remaining.remove(&m.partition());
            }
        }
    }
    seqs
}
