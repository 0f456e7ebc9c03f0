//! The outbox relay: makes sure every event committed to the event store reaches Kafka, even
//! when the process that stored it died before publishing it.
//!
//! It keeps one durable position in the event store (the committed offset of the consumer
//! group `<prefix>outbox-relay`): every event up to it is known to be in Kafka. Each pass reads
//! the events after it in `seq` order. An event counts as published when this process
//! published it or its live consumer read it back from Kafka ([`Seen`]); an event not known
//! as published `relay_grace` after the relay first saw it is published again. A gap in the
//! sequence (a transaction not yet visible, or one rolled back) holds the position for
//! `relay_grace` too, then is passed. The position then moves over the settled prefix and is
//! stored. Several relays may run: they share the position (each starts a pass from the
//! furthest stored one), and a duplicate they publish is dropped by the consumers' dedupe by
//! event id. Nothing depends on broker transactions or watermarks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use integr8s_core::error::BusError;
use integr8s_core::ports::BusLog;
use integr8s_core::EventType;
use tokio::sync::watch;

use super::client::Producer;
use super::watch::{Hub, Seen};
use super::{send_event, KafkaConfig};
use crate::lock;

/// The store offset that holds the relay position is the one of this topic.
const POSITION_TOPIC: EventType = EventType::ExecutionRequested;

pub(crate) struct Relay {
    pub store: Arc<dyn BusLog>,
    pub producer: Arc<Producer>,
    pub config: Arc<KafkaConfig>,
    pub seen: Seen,
    pub hub: Arc<Hub>,
}

/// Counts of one pass.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    pub passed: usize,
    pub republished: usize,
}

impl Relay {
    fn group(&self) -> String {
        self.config.group_id("outbox-relay")
    }

    /// Runs until `stop` closes, then makes a last pass.
    pub(crate) async fn run(self, mut stop: watch::Receiver<()>) {
        // Reading Kafka back is how events published by other processes become known.
        while let Err(e) = self.hub.subscribe().await {
            tracing::warn!(error = %e, "outbox relay cannot start its live consumer; retrying");
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(self.config.relay_interval) => {}
            }
        }
        let mut first_seen = HashMap::new();
        let mut tick = tokio::time::interval(self.config.relay_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = stop.changed() => true,
                _ = tick.tick() => false,
            };
            if let Err(e) = self.pass(&mut first_seen).await {
                tracing::warn!(error = %e, "outbox relay pass failed; retrying");
            }
            if stopping {
                break;
            }
        }
    }

    /// One pass over the events after the stored position.
    pub(crate) async fn pass(
        &self,
        first_seen: &mut HashMap<i64, Instant>,
    ) -> Result<Pass, BusError> {
        let group = self.group();
        let position = self.store.consumer_offset(&group, POSITION_TOPIC).await?;
        let events = self
            .store
            .events_after(EventType::ALL, position, self.config.relay_batch)
            .await?;
        let now = Instant::now();
        let due = |seq: i64, first_seen: &mut HashMap<i64, Instant>| {
            now.duration_since(*first_seen.entry(seq).or_insert(now)) >= self.config.relay_grace
        };
        let mut done = Pass::default();
        let mut upto = position;
        for event in events {
            if event.seq > upto + 1 && !due(upto + 1, first_seen) {
                break;
            }
            if !lock(&self.seen).contains(&event.seq) {
                if !due(event.seq, first_seen) {
                    break;
                }
                if let Err(e) = send_event(&self.producer, &self.config, &event).await {
                    tracing::warn!(seq = event.seq, error = %e, "outbox relay cannot publish; retrying");
                    break;
                }
                tracing::info!(seq = event.seq, event_id = %event.envelope.event_id, "outbox relay published an event its writer had not");
                done.republished += 1;
            }
            upto = event.seq;
            done.passed += 1;
        }
        if upto > position {
            self.store
                .commit_offset(&group, POSITION_TOPIC, upto)
                .await?;
            lock(&self.seen).retain(|seq| *seq > upto);
            first_seen.retain(|seq, _| *seq > upto);
        }
        Ok(done)
    }
}
