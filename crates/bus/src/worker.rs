//! One consumer group's worker for one topic: reads the log from the committed offset, hands
//! events to the group's subscriptions, and turns acks into committed offsets. After a publish
//! it takes the new events from the published log when that holds everything after its cursor.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use futures::future::{select_all, BoxFuture};
use integr8s_core::ports::bus::Acker;
use integr8s_core::ports::{BusLog, Delivery};
use integr8s_core::{EventType, StoredEvent};
use tokio::sync::mpsc::{self, OwnedPermit, Sender};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use crate::published::PublishedLog;
use crate::BusConfig;

/// Messages from the bus to a worker.
pub(crate) enum Control {
    /// A new subscription of the group to this topic.
    Subscribe(Sender<Delivery>),
}

/// Room in one subscription's buffer, or the error of a closed subscription.
type Reserved = Result<OwnedPermit<Delivery>, mpsc::error::SendError<()>>;

/// How a delivery was settled.
struct Settle {
    seq: i64,
    attempt: u32,
    ack: bool,
}

struct SettleAcker {
    seq: i64,
    attempt: u32,
    tx: mpsc::UnboundedSender<Settle>,
}

impl SettleAcker {
    fn settle(self, ack: bool) {
        // A stopped worker no longer tracks the event; the next one redelivers it.
        let _ = self.tx.send(Settle {
            seq: self.seq,
            attempt: self.attempt,
            ack,
        });
    }
}

impl Acker for SettleAcker {
    fn ack(self: Box<Self>) {
        self.settle(true);
    }

    fn nack(self: Box<Self>) {
        self.settle(false);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Waiting to be handed out.
    Ready,
    /// Handed to a subscription, not settled yet.
    Out,
    /// Nacked; back in `ready` when its back-off ends.
    Backoff,
    Acked,
}

struct Slot {
    event: StoredEvent,
    attempt: u32,
    state: SlotState,
}

enum Wake {
    Control(Option<Control>),
    Settled(Settle),
    Capacity(usize, Reserved),
    Published,
    Poll,
    RetryDue,
    CommitDue,
}

pub(crate) struct GroupWorker {
    group: String,
    topic: EventType,
    store: Arc<dyn BusLog>,
    log: Arc<PublishedLog>,
    config: BusConfig,
    control: mpsc::UnboundedReceiver<Control>,
    wake: watch::Receiver<i64>,
    wake_open: bool,
    settle_tx: mpsc::UnboundedSender<Settle>,
    settle_rx: mpsc::UnboundedReceiver<Settle>,
    subscribers: Vec<Sender<Delivery>>,
    /// Where the next subscription search starts (round robin).
    next_subscriber: usize,
    /// Highest seq read from the log; `None` until the committed offset is loaded.
    cursor: Option<i64>,
    need_fetch: bool,
    /// The next fetch reads the store (a poll, a new subscription, or a read not finished):
    /// only a publish's wake-up may be served from the published log.
    need_store: bool,
    /// Every event read and not yet part of the committed prefix, by seq.
    slots: BTreeMap<i64, Slot>,
    /// Bytes of the events in `slots` (by `EventPayload::approx_bytes`).
    slot_bytes: usize,
    ready: BTreeSet<i64>,
    /// Unacked seqs per aggregate: only the first of each may be out.
    unacked: HashMap<String, BTreeSet<i64>>,
    retries: BinaryHeap<Reverse<(Instant, i64)>>,
    /// End of the contiguous acked prefix, and what the store holds.
    acked_upto: i64,
    committed: i64,
    commit_at: Option<Instant>,
}

impl GroupWorker {
    pub(crate) fn new(
        group: String,
        topic: EventType,
        store: Arc<dyn BusLog>,
        log: Arc<PublishedLog>,
        config: BusConfig,
        control: mpsc::UnboundedReceiver<Control>,
        wake: watch::Receiver<i64>,
    ) -> Self {
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        Self {
            group,
            topic,
            store,
            log,
            config,
            control,
            wake,
            wake_open: true,
            settle_tx,
            settle_rx,
            subscribers: Vec::new(),
            next_subscriber: 0,
            cursor: None,
            need_fetch: true,
            need_store: true,
            slots: BTreeMap::new(),
            slot_bytes: 0,
            ready: BTreeSet::new(),
            unacked: HashMap::new(),
            retries: BinaryHeap::new(),
            acked_upto: 0,
            committed: 0,
            commit_at: None,
        }
    }

    /// Runs until the bus is dropped, then commits what was acked.
    pub(crate) async fn run(mut self) {
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            self.fetch_if_needed().await;
            let dispatchable = !self.subscribers.is_empty() && self.next_dispatchable().is_some();
            let capacity = dispatchable.then(|| self.reserve_any());
            let retry_at = self.retries.peek().map(|Reverse((at, _))| *at);
            let commit_at = self.commit_at;
            let wake = tokio::select! {
                biased;
                control = self.control.recv() => Wake::Control(control),
                Some(settle) = self.settle_rx.recv() => Wake::Settled(settle),
                (index, permit) = async move {
                    match capacity {
                        Some(waiting) => waiting.await,
                        None => std::future::pending().await,
                    }
                }, if dispatchable => Wake::Capacity(index, permit),
                changed = self.wake.changed(), if self.wake_open => {
                    self.wake_open = changed.is_ok();
                    Wake::Published
                }
                _ = poll.tick() => Wake::Poll,
                _ = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => Wake::RetryDue,
                _ = sleep_until(commit_at.unwrap_or_else(Instant::now)), if commit_at.is_some() => Wake::CommitDue,
            };
            match wake {
                Wake::Control(Some(Control::Subscribe(tx))) => {
                    self.subscribers.push(tx);
                    self.need_fetch = true;
                    self.need_store = true;
                }
                Wake::Control(None) => break,
                Wake::Settled(settle) => {
                    self.on_settle(settle);
                    while let Ok(settle) = self.settle_rx.try_recv() {
                        self.on_settle(settle);
                    }
                }
                Wake::Capacity(index, Ok(permit)) => self.dispatch(index, permit),
                Wake::Capacity(index, Err(_)) => {
                    self.subscribers.remove(index);
                }
                // A publish this worker has already read past needs no query.
                Wake::Published => {
                    let published = *self.wake.borrow();
                    if self.cursor.is_none_or(|cursor| published > cursor) {
                        self.need_fetch = true;
                    }
                }
                Wake::Poll => {
                    self.need_fetch = true;
                    self.need_store = true;
                }
                Wake::RetryDue => self.requeue_due(),
                Wake::CommitDue => self.commit().await,
            }
        }
        self.commit().await;
        tracing::debug!(group = %self.group, topic = %self.topic, "bus worker stopped");
    }

    /// Waits until some subscription can take a delivery; yields its index. The search starts
    /// at `next_subscriber`, so ready subscriptions take turns.
    fn reserve_any(&self) -> BoxFuture<'static, (usize, Reserved)> {
        let n = self.subscribers.len();
        let start = self.next_subscriber % n;
        let order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        let futures = order
            .iter()
            .map(|&i| Box::pin(self.subscribers[i].clone().reserve_owned()));
        let waiting = select_all(futures);
        Box::pin(async move {
            let (result, position, _) = waiting.await;
            (order[position], result)
        })
    }

    async fn fetch_if_needed(&mut self) {
        if self.cursor.is_none() {
            match self.store.consumer_offset(&self.group, self.topic).await {
                Ok(offset) => {
                    self.cursor = Some(offset);
                    self.acked_upto = offset;
                    self.committed = offset;
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, topic = %self.topic, error = %e, "cannot load consumer offset; retrying at the next poll");
                    self.need_fetch = false;
                    return;
                }
            }
        }
        let Some(cursor) = self.cursor else {
            return;
        };
        if !self.need_fetch
            || self.subscribers.is_empty()
            || self.slots.len() >= self.config.max_in_flight
            || self.slot_bytes >= self.config.max_in_flight_bytes
        {
            return;
        }
        let batch = self.config.batch_size as usize;
        if !self.need_store {
            if let Some((events, upto)) = self.log.read(self.topic, cursor, batch) {
                let full = events.len() >= batch;
                if !self.take(events) {
                    // Held back by the byte bound: the rest is read again once room is made.
                    self.need_fetch = true;
                    return;
                }
                self.cursor = Some(upto.max(cursor));
                // A publish above a gap of the log is read from the store.
                if full || *self.wake.borrow() <= upto {
                    self.need_fetch = full;
                    return;
                }
            }
        }
        let Some(cursor) = self.cursor else {
            return;
        };
        // Every event up to the log's frontier is committed, so a read that comes back
        // complete has seen all of them: the cursor may skip to it.
        let known = self.log.frontier();
        let events = match self
            .store
            .events_after(&[self.topic], cursor, self.config.batch_size)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(group = %self.group, topic = %self.topic, error = %e, "cannot read the event log; retrying at the next poll");
                self.need_fetch = false;
                return;
            }
        };
        let short = events.len() < batch;
        let complete = self.take(events) && short;
        self.need_fetch = !complete;
        if complete {
            self.need_store = false;
            if let Some(known) = known {
                self.cursor = Some(cursor.max(known).max(self.cursor.unwrap_or(cursor)));
            }
        }
    }

    /// Adds events read after the cursor (in `seq` order) to the slots, ready to be handed out,
    /// while the byte bound allows (one event always fits when nothing is in flight); `false`
    /// when it stopped before the end (the cursor is at the last one taken).
    fn take(&mut self, events: Vec<StoredEvent>) -> bool {
        for event in events {
            let size = event.envelope.payload.approx_bytes();
            if !self.slots.is_empty()
                && self.slot_bytes.saturating_add(size) > self.config.max_in_flight_bytes
            {
                return false;
            }
            self.slot_bytes += size;
            let seq = event.seq;
            self.cursor = Some(seq);
            if let Some(aggregate) = &event.envelope.aggregate_id {
                self.unacked
                    .entry(aggregate.clone())
                    .or_default()
                    .insert(seq);
            }
            self.slots.insert(
                seq,
                Slot {
                    event,
                    attempt: 1,
                    state: SlotState::Ready,
                },
            );
            self.ready.insert(seq);
        }
        true
    }

    /// The lowest ready seq that is the first unacked event of its aggregate.
    fn next_dispatchable(&self) -> Option<i64> {
        self.ready.iter().copied().find(|seq| {
            let Some(aggregate) = self
                .slots
                .get(seq)
                .and_then(|s| s.event.envelope.aggregate_id.as_ref())
            else {
                return true;
            };
            self.unacked
                .get(aggregate)
                .and_then(|seqs| seqs.first())
                .is_none_or(|first| first == seq)
        })
    }

    fn dispatch(&mut self, subscriber: usize, permit: OwnedPermit<Delivery>) {
        let Some(seq) = self.next_dispatchable() else {
            return;
        };
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        self.ready.remove(&seq);
        slot.state = SlotState::Out;
        let acker = SettleAcker {
            seq,
            attempt: slot.attempt,
            tx: self.settle_tx.clone(),
        };
        permit.send(Delivery::new(
            slot.event.clone(),
            slot.attempt,
            Box::new(acker),
        ));
        self.next_subscriber = subscriber + 1;
    }

    fn on_settle(&mut self, settle: Settle) {
        let Some(slot) = self.slots.get_mut(&settle.seq) else {
            return;
        };
        if slot.state != SlotState::Out || slot.attempt != settle.attempt {
            return;
        }
        if !settle.ack {
            slot.state = SlotState::Backoff;
            let delay = self
                .config
                .redelivery_step
                .saturating_mul(slot.attempt)
                .min(self.config.redelivery_max);
            self.retries
                .push(Reverse((Instant::now() + delay, settle.seq)));
            return;
        }
        slot.state = SlotState::Acked;
        if let Some(aggregate) = slot.event.envelope.aggregate_id.clone() {
            if let Some(seqs) = self.unacked.get_mut(&aggregate) {
                seqs.remove(&settle.seq);
                if seqs.is_empty() {
                    self.unacked.remove(&aggregate);
                }
            }
        }
        while let Some(entry) = self.slots.first_entry() {
            if entry.get().state != SlotState::Acked {
                break;
            }
            self.acked_upto = *entry.key();
            let slot = entry.remove();
            self.slot_bytes = self
                .slot_bytes
                .saturating_sub(slot.event.envelope.payload.approx_bytes());
        }
        if self.acked_upto > self.committed && self.commit_at.is_none() {
            self.commit_at = Some(Instant::now() + self.config.commit_delay);
        }
        // A fetch held back by `max_in_flight` kept `need_fetch` set; nothing else to read.
    }

    fn requeue_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, seq))) = self.retries.peek().copied() {
            if at > now {
                break;
            }
            self.retries.pop();
            if let Some(slot) = self.slots.get_mut(&seq) {
                if slot.state == SlotState::Backoff {
                    slot.attempt += 1;
                    slot.state = SlotState::Ready;
                    self.ready.insert(seq);
                }
            }
        }
    }

    async fn commit(&mut self) {
        self.commit_at = None;
        if self.acked_upto <= self.committed {
            return;
        }
        match self
            .store
            .commit_offset(&self.group, self.topic, self.acked_upto)
            .await
        {
            Ok(()) => self.committed = self.acked_upto,
            Err(e) => {
                tracing::warn!(group = %self.group, topic = %self.topic, error = %e, "cannot commit consumer offset; retrying");
                self.commit_at = Some(Instant::now() + self.config.poll_interval);
            }
        }
    }
}
