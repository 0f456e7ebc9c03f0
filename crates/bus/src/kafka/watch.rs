//! Live fan-out: one consumer per bus reads every event topic from its end (no group
//! membership, no commits) and broadcasts what it reads to the bus's watchers. The relay also
//! learns from it which events reached Kafka.
//!
//! The start positions come from the partitions' high watermarks. Some brokers report them
//! too low after multi-record batches; the consumer then re-reads a few older messages, which
//! watchers drop by sequence number (see [`KafkaBus::watch`](super::KafkaBus)).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use integr8s_core::error::BusError;
use integr8s_core::StoredEvent;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, watch, OnceCell};

use super::client::{self, client_config, Logs};
use super::codec;
use super::subscription::unavailable;
use super::KafkaConfig;
use crate::lock;

/// Sequence numbers known to be in Kafka (published here or read back), for the relay.
pub(crate) type Seen = Arc<Mutex<BTreeSet<i64>>>;

/// Starts the live consumer once, on first use.
pub(crate) struct Hub {
    config: Arc<KafkaConfig>,
    live: OnceCell<broadcast::Sender<StoredEvent>>,
    seen: Option<Seen>,
    stop: watch::Receiver<()>,
}

impl Hub {
    pub(crate) fn new(
        config: Arc<KafkaConfig>,
        seen: Option<Seen>,
        stop: watch::Receiver<()>,
    ) -> Self {
        Self {
            config,
            live: OnceCell::new(),
            seen,
            stop,
        }
    }

    /// The live events, starting the consumer if needed; returns once it is positioned, so
    /// every event published afterwards is seen.
    pub(crate) async fn subscribe(&self) -> Result<broadcast::Receiver<StoredEvent>, BusError> {
        let live = self.live.get_or_try_init(|| self.start()).await?;
        Ok(live.subscribe())
    }

    async fn start(&self) -> Result<broadcast::Sender<StoredEvent>, BusError> {
        let config = self.config.clone();
        let consumer: StreamConsumer<Logs> = client_config(&config)
            .set(
                "group.id",
                config.group_id(&format!("watch-{}", integr8s_core::new_id())),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", KafkaConfig::millis(config.fetch_wait))
            .create_with_context(Logs)
            .map_err(unavailable)?;
        let consumer = Arc::new(consumer);
        let positioned = consumer.clone();
        tokio::task::spawn_blocking(move || position_at_end(&positioned, &config))
            .await
            .map_err(|e| BusError::Unavailable(format!("watch start: {e}")))?
            .map_err(unavailable)?;
        let (live, _) = broadcast::channel(self.config.watch_capacity.max(1));
        tokio::spawn(run(
            consumer,
            live.clone(),
            self.seen.clone(),
            self.stop.clone(),
        ));
        Ok(live)
    }
}

fn position_at_end(
    consumer: &StreamConsumer<Logs>,
    config: &KafkaConfig,
) -> Result<(), KafkaError> {
    let timeout = config.request_timeout;
    let metadata = consumer.fetch_metadata(None, timeout)?;
    let mut tpl = TopicPartitionList::new();
    for topic in metadata.topics() {
        if config.event_type_of(topic.name()).is_none() {
            continue;
        }
        for partition in topic.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic.name(), partition.id(), timeout)?;
            tpl.add_partition_offset(topic.name(), partition.id(), Offset::Offset(high))?;
        }
    }
    if tpl.count() == 0 {
        tracing::warn!(prefix = %config.topic_prefix, "no event topics on the brokers; watching nothing (run `integr8s migrate`)");
    }
    consumer.assign(&tpl)
}

async fn run(
    consumer: Arc<StreamConsumer<Logs>>,
    live: broadcast::Sender<StoredEvent>,
    seen: Option<Seen>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => match message {
                Ok(m) => match codec::decode(m.payload(), m.headers()) {
                    Ok(event) => {
                        if let Some(seen) = &seen {
                            lock(seen).insert(event.seq);
                        }
                        // No watcher is not an error.
                        let _ = live.send(event);
                    }
                    Err(e) => tracing::debug!(topic = m.topic(), offset = m.offset(), error = %e, "undecodable message not watched"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "kafka watch consumer error");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    client::close_in_background("watch", move || drop(consumer));
}
