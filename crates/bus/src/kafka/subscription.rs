//! One subscription: a member of a Kafka consumer group, run by a task of its own.
//!
//! The task reads messages into [`Partitions`], hands them out one at a time through a channel
//! of capacity one (so a group's work goes to whichever member is free), dead-letters poison
//! messages, and commits the acknowledged prefix of each partition every `commit_interval`.
//! On a rebalance (librdkafka's callback, run inside the task's poll) it stops handing out the
//! revoked partitions, waits up to `rebalance_grace` for their handed-out deliveries to
//! settle, commits what was acknowledged, and lets them go. When the subscription stream is
//! dropped the task commits and closes the consumer, which leaves the group.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream, StreamExt};
use integr8s_core::error::BusError;
use integr8s_core::ports::bus::Acker;
use integr8s_core::ports::Delivery;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, Notify};

use super::client::{self, client_config, Producer};
use super::codec;
use super::dlq;
use super::partitions::{Body, Partitions, Raw, Settled, Token, Tp};
use super::KafkaConfig;
use crate::lock;
use crate::recent::Recent;

/// Event ids a group has acknowledged in this process (the consumer-side dedupe).
pub(crate) type Done = Arc<Mutex<Recent<String>>>;

/// What the task, the rebalance callbacks and the ackers share.
struct Member {
    group: String,
    config: Arc<KafkaConfig>,
    partitions: Mutex<Partitions>,
    /// Signalled on every settle (a revoke waits on it).
    settled: Condvar,
    /// Wakes the task.
    wake: Notify,
    done: Done,
}

impl Member {
    fn settle(&self, token: &Token, event_id: &str, ack: bool) {
        let retry_at = Instant::now() + self.config.backoff(token.attempt);
        let settled = lock(&self.partitions).settle(token, ack, self.config.max_attempts, retry_at);
        match settled {
            Settled::Acked => {
                lock(&self.done).first_time(event_id.to_owned());
            }
            Settled::DeadLetter => {
                tracing::warn!(group = %self.group, topic = %token.tp.0, partition = token.tp.1, offset = token.offset, attempt = token.attempt, "delivery failed too often; it goes to the DLQ topic");
            }
            Settled::Redeliver | Settled::Ignored => {}
        }
        self.settled.notify_all();
        self.wake.notify_one();
    }

    fn revoke(&self, consumer: &BaseConsumer<MemberContext>, tpl: &TopicPartitionList) {
        let tps: Vec<Tp> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let deadline = Instant::now() + self.config.rebalance_grace;
        let mut parts = lock(&self.partitions);
        parts.start_revoke(&tps);
        while parts.any_out(&tps) {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(group = %self.group, "deliveries of revoked partitions still unsettled; they go to the next owner");
                break;
            }
            parts = match self.settled.wait_timeout(parts, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let offsets = parts.take_commits(Some(&tps));
        parts.remove(&tps);
        drop(parts);
        commit(consumer, &self.group, &offsets, CommitMode::Sync);
        tracing::debug!(group = %self.group, partitions = tps.len(), "partitions revoked");
    }

    fn assign(&self, tpl: &TopicPartitionList) {
        let tps: Vec<Tp> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        tracing::debug!(group = %self.group, partitions = tps.len(), "partitions assigned");
        lock(&self.partitions).assign(tps);
    }

    fn receive(&self, m: &BorrowedMessage<'_>) {
        let tp = (m.topic().to_owned(), m.partition());
        let body = match codec::decode(m.payload(), m.headers()) {
            Ok(event) => Body::Event(Box::new(event)),
            Err(e) => {
                tracing::warn!(group = %self.group, topic = %tp.0, partition = tp.1, offset = m.offset(), error = %e, "undecodable message; it goes to the DLQ topic");
                Body::Poison(Raw {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
        };
        lock(&self.partitions).receive(tp, m.offset(), body);
    }
}

/// Commits `offsets` (the next offset to read, per partition); failures are logged, the
/// messages are then redelivered (at least once).
fn commit<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    group: &str,
    offsets: &[(Tp, i64)],
    mode: CommitMode,
) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(group, topic, error = %e, "cannot name a partition to commit");
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::warn!(group, error = %e, "offset commit failed; uncommitted messages will be redelivered");
    }
}

struct MemberContext(Arc<Member>);

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client::log(level, facility, message);
    }

    fn error(&self, e: KafkaError, reason: &str) {
        client::error(e, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self.0.revoke(consumer, tpl),
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.0.group, error = %e, "rebalance error")
            }
            Rebalance::Assign(_) => {}
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.0.assign(tpl);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(group = %self.0.group, error = %e, "offset commit failed; committing again");
            lock(&self.0.partitions).forget_commits();
        }
    }
}

struct MemberAcker {
    member: Arc<Member>,
    token: Token,
    event_id: String,
}

impl Acker for MemberAcker {
    fn ack(self: Box<Self>) {
        self.member.settle(&self.token, &self.event_id, true);
    }

    fn nack(self: Box<Self>) {
        self.member.settle(&self.token, &self.event_id, false);
    }
}

/// Joins `group` for `topics` and returns the subscription's deliveries.
pub(crate) fn subscribe(
    config: Arc<KafkaConfig>,
    producer: Arc<Producer>,
    group: &str,
    topics: &[String],
    done: Done,
) -> Result<BoxStream<'static, Delivery>, BusError> {
    let member = Arc::new(Member {
        group: group.to_owned(),
        config: config.clone(),
        partitions: Mutex::new(Partitions::default()),
        settled: Condvar::new(),
        wake: Notify::new(),
        done,
    });
    let heartbeat = (config.session_timeout / 3).max(Duration::from_millis(100));
    let consumer: StreamConsumer<MemberContext> = client_config(&config)
        .set("group.id", config.group_id(group))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            KafkaConfig::millis(config.session_timeout),
        )
        .set("heartbeat.interval.ms", KafkaConfig::millis(heartbeat))
        .set("fetch.wait.max.ms", KafkaConfig::millis(config.fetch_wait))
        .create_with_context(MemberContext(member.clone()))
        .map_err(unavailable)?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(unavailable)?;
    let (tx, rx) = mpsc::channel::<Delivery>(1);
    tokio::spawn(run(consumer, member, producer, tx));
    Ok(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|delivery| (delivery, rx))
    })
    .boxed())
}

pub(crate) fn unavailable(e: KafkaError) -> BusError {
    BusError::Unavailable(format!("kafka: {e}"))
}

async fn run(
    consumer: StreamConsumer<MemberContext>,
    member: Arc<Member>,
    producer: Arc<Producer>,
    tx: mpsc::Sender<Delivery>,
) {
    let config = member.config.clone();
    let mut commit_at: Option<Instant> = None;
    loop {
        let (ready, retry_at, dirty) = {
            let done = lock(&member.done);
            let mut parts = lock(&member.partitions);
            let retry_at = parts.prepare(Instant::now(), |id| done.contains(id));
            (parts.has_handout(), retry_at, parts.dirty())
        };
        if dirty && commit_at.is_none() {
            commit_at = Some(Instant::now() + config.commit_interval);
        }
        let timer = match (retry_at, commit_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            biased;
            _ = tx.closed() => break,
            permit = tx.reserve(), if ready => match permit {
                Ok(permit) => {
                    let handout = lock(&member.partitions).take();
                    if let Some(h) = handout {
                        let acker = MemberAcker {
                            member: member.clone(),
                            event_id: h.event.envelope.event_id.clone(),
                            token: h.token.clone(),
                        };
                        permit.send(Delivery::new(h.event, h.token.attempt, Box::new(acker)));
                    }
                }
                Err(_) => break,
            },
            _ = member.wake.notified() => {}
            message = consumer.recv() => match message {
                Ok(m) => member.receive(&m),
                Err(e) => {
                    tracing::warn!(group = %member.group, error = %e, "kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(timer.unwrap_or_else(Instant::now))), if timer.is_some() => {}
        }
        let letters = lock(&member.partitions).take_dead_letters();
        for letter in letters {
            let written = dlq::write(&producer, &config, &member.group, &letter).await;
            lock(&member.partitions).dead_lettered(&letter, written);
        }
        if commit_at.is_some_and(|at| at <= Instant::now()) {
            commit_at = None;
            let offsets = lock(&member.partitions).take_commits(None);
            commit(&consumer, &member.group, &offsets, CommitMode::Async);
        }
        let (pause, resume) = lock(&member.partitions).flow(config.max_buffered_per_partition);
        flow(&consumer, &member.group, &pause, true);
        flow(&consumer, &member.group, &resume, false);
    }
    client::close_in_background("subscription", move || {
        let offsets = lock(&member.partitions).take_commits(None);
        commit(&consumer, &member.group, &offsets, CommitMode::Sync);
        drop(consumer);
        tracing::debug!(group = %member.group, "subscription closed");
    });
}

fn flow(consumer: &StreamConsumer<MemberContext>, group: &str, tps: &[Tp], pause: bool) {
    if tps.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in tps {
        tpl.add_partition(topic, *partition);
    }
    let result = if pause {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    if let Err(e) = result {
        tracing::warn!(group, pause, error = %e, "cannot pause or resume partitions");
    }
}
