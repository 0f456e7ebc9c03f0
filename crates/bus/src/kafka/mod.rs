//! The Kafka event bus (rdkafka).
//!
//! Layout: one topic per event type, named `<prefix><event_type>`, and `<prefix>dlq` for
//! poison messages; consumer groups are named `<prefix><group>`. A message's key is the
//! event's aggregate id, so one execution's events share a partition and keep their order; its
//! value is the event's JSON, its headers the event type, event id, store sequence number,
//! correlation id and replay marker (`codec.rs`).
//!
//! Delivery is at least once. Each [`subscribe`](EventBus::subscribe) is one member of the
//! group (`subscription.rs`): it commits a partition's offset only past messages that were
//! acknowledged together with every earlier message of that partition, redelivers nacked or
//! dropped deliveries with a back-off, sends poison messages to the DLQ topic, and drops
//! duplicates of events the group already acknowledged in this process (dedupe by event id).
//! Publishing waits for the broker; an event that never got there is published by the outbox
//! relay (`relay.rs`). Nothing depends on broker transactions or exact watermarks.

mod client;
mod codec;
mod config;
mod dlq;
mod partitions;
mod relay;
mod subscription;
mod topics;
mod watch;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use integr8s_core::error::BusError;
use integr8s_core::ports::{BusLog, Delivery, EventBus};
use integr8s_core::{EventType, StoredEvent};
use rdkafka::error::KafkaError;
use thiserror::Error;
use tokio::sync::broadcast;

pub use config::KafkaConfig;
pub use topics::{create_topics, TopicsCreated};

use client::Producer;
use relay::Relay;
use subscription::Done;
use watch::{Hub, Seen};

use crate::lock;
use crate::recent::Recent;

/// Event ids remembered per group for the consumer dedupe, and sequence numbers for the
/// publish dedupe.
const RECENT_CAPACITY: usize = 16384;

#[derive(Debug, Error)]
pub enum KafkaSetupError {
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
}

struct Inner {
    config: Arc<KafkaConfig>,
    store: Arc<dyn BusLog>,
    producer: Arc<Producer>,
    hub: Arc<Hub>,
    /// Sequence numbers published by this bus (publishing again is a no-op).
    published: Mutex<Recent<i64>>,
    /// What the relay knows to be in Kafka; `None` without a relay.
    seen: Option<Seen>,
    /// Per group: event ids acknowledged in this process.
    done: Mutex<HashMap<String, Done>>,
    /// Dropped with the bus: stops the relay and the live consumer.
    _stop: tokio::sync::watch::Sender<()>,
}

/// The Kafka [`EventBus`]. Clones share the producer, the live consumer and the relay.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

impl KafkaBus {
    /// Connects lazily (no broker round trip here) and, if `config.relay`, starts the outbox
    /// relay over `store`. Must be called inside a tokio runtime.
    pub fn new(store: Arc<dyn BusLog>, config: KafkaConfig) -> Result<Self, KafkaSetupError> {
        let config = Arc::new(config);
        let producer = Arc::new(Producer::new(&config)?);
        let (stop, stopped) = tokio::sync::watch::channel(());
        let seen: Option<Seen> = config.relay.then(|| Arc::new(Mutex::new(BTreeSet::new())));
        let hub = Arc::new(Hub::new(config.clone(), seen.clone(), stopped.clone()));
        if let Some(seen) = &seen {
            let relay = Relay {
                store: store.clone(),
                producer: producer.clone(),
                config: config.clone(),
                seen: seen.clone(),
                hub: hub.clone(),
            };
            tokio::spawn(relay.run(stopped));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                producer,
                hub,
                published: Mutex::new(Recent::new(RECENT_CAPACITY)),
                seen,
                done: Mutex::default(),
                _stop: stop,
            }),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// Whether the brokers answer (a metadata round trip), for readiness checks.
    pub async fn ping(&self) -> Result<(), BusError> {
        let producer = self.inner.producer.clone();
        tokio::task::spawn_blocking(move || producer.ping())
            .await
            .map_err(|e| BusError::Unavailable(format!("kafka ping: {e}")))?
            .map_err(subscription::unavailable)
    }

    fn done(&self, group: &str) -> Done {
        lock(&self.inner.done)
            .entry(group.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Recent::new(RECENT_CAPACITY))))
            .clone()
    }
}

/// Produces one stored event to its topic and waits for the broker.
pub(crate) async fn send_event(
    producer: &Producer,
    config: &KafkaConfig,
    event: &StoredEvent,
) -> Result<(), BusError> {
    let message = codec::encode(event)
        .map_err(|e| BusError::Unavailable(format!("cannot encode event: {e}")))?;
    producer
        .send(
            &config.topic(event.envelope.event_type()),
            Some(message.key.as_bytes()),
            Some(&message.value),
            message.headers,
        )
        .await
        .map_err(subscription::unavailable)
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn publish(&self, event: &StoredEvent) -> Result<(), BusError> {
        if lock(&self.inner.published).contains(&event.seq) {
            return Ok(());
        }
        send_event(&self.inner.producer, &self.inner.config, event).await?;
        lock(&self.inner.published).first_time(event.seq);
        if let Some(seen) = &self.inner.seen {
            lock(seen).insert(event.seq);
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topics: &[EventType],
        group: &str,
    ) -> Result<BoxStream<'static, Delivery>, BusError> {
        if topics.is_empty() {
            return Err(BusError::Unavailable(
                "subscribe needs at least one topic".into(),
            ));
        }
        let unique: BTreeSet<EventType> = topics.iter().copied().collect();
        let names: Vec<String> = unique.iter().map(|t| self.inner.config.topic(*t)).collect();
        subscription::subscribe(
            self.inner.config.clone(),
            self.inner.producer.clone(),
            group,
            &names,
            self.done(group),
        )
    }

    /// Events stored before the watch started are never delivered, even if the live consumer
    /// reads them again (watermarks may be stale) or the relay republishes them.
    async fn watch(
        &self,
        topics: &[EventType],
    ) -> Result<BoxStream<'static, StoredEvent>, BusError> {
        let rx = self.inner.hub.subscribe().await?;
        let from = self.inner.store.last_seq().await?;
        let topics: Arc<HashSet<EventType>> = Arc::new(topics.iter().copied().collect());
        Ok(
            stream::unfold((rx, topics), move |(mut rx, topics)| async move {
                loop {
                    match rx.recv().await {
                        Ok(event)
                            if event.seq > from
                                && topics.contains(&event.envelope.event_type()) =>
                        {
                            return Some((event, (rx, topics)));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "watcher too slow; live events skipped");
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            })
            .boxed(),
        )
    }
}
