//! Event buses: [`MemoryBus`], in process, and with the `kafka` feature [`kafka::KafkaBus`].
//!
//! The in-process bus is a tailer over the event store.
//!
//! `publish` wakes the consumers of the event's topic, feeds live watchers and records the event
//! in the published log ([`published`]): a consumer woken by a publish takes the new events from
//! there when the log holds everything after its position, and reads the event log itself
//! (`events_after` from its group's committed offset) otherwise, on a new subscription and on
//! every periodic poll, so an event that was stored but never published is still delivered.
//!
//! Each (consumer group, topic) pair has one worker task per bus instance. It hands every event
//! to one of the group's subscriptions, tracks acks, redelivers what was nacked or dropped after
//! a short back-off, and commits the contiguous acknowledged prefix as the group's offset. Within
//! a topic, an event is not handed out while an earlier event of the same aggregate is unsettled,
//! so one execution's events reach the group in order.

#[cfg(feature = "kafka")]
pub mod kafka;
mod published;
mod recent;
#[cfg(feature = "testing")]
pub mod testing;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use integr8s_core::error::BusError;
use integr8s_core::ports::{BusLog, Delivery, EventBus};
use integr8s_core::{EventType, StoredEvent};
use tokio::sync::{broadcast, mpsc, watch, Notify};

use published::PublishedLog;
use recent::Recent;
use worker::{Control, GroupWorker};

/// Tuning of the bus; the defaults suit the single-process deployment.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// How often each worker reads the log without a wake-up (events written by another
    /// process, or stored but not published).
    pub poll_interval: Duration,
    /// Events read from the store per query.
    pub batch_size: u32,
    /// Unsettled events one worker holds at most.
    pub max_in_flight: usize,
    /// And at most about this many bytes of them (by `EventPayload::approx_bytes`; one event
    /// is always taken, however large).
    pub max_in_flight_bytes: usize,
    /// Redelivery back-off: `redelivery_step × attempt`, at most `redelivery_max`.
    pub redelivery_step: Duration,
    pub redelivery_max: Duration,
    /// Acks are committed to the store at most this long after they arrive (batched).
    pub commit_delay: Duration,
    /// Live events buffered per watcher before it starts missing some.
    pub watch_capacity: usize,
    /// Published events kept in memory for the consumers (see [`published`]).
    pub published_capacity: usize,
    /// And at most this many bytes of them (by [`EventPayload::approx_bytes`]): a few runs
    /// with large outputs take the room of many small events.
    ///
    /// [`EventPayload::approx_bytes`]: integr8s_core::event::EventPayload::approx_bytes
    pub published_capacity_bytes: usize,
    /// How long a gap below published events may stay open before the store is read to
    /// close it (events published out of `seq` order usually close it at once).
    pub gap_wait: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            batch_size: 128,
            max_in_flight: 256,
            max_in_flight_bytes: 64 * 1024 * 1024,
            redelivery_step: Duration::from_millis(100),
            redelivery_max: Duration::from_secs(2),
            commit_delay: Duration::from_millis(20),
            watch_capacity: 1024,
            published_capacity: 4096,
            published_capacity_bytes: 64 * 1024 * 1024,
            gap_wait: Duration::from_millis(5),
        }
    }
}

/// Sequence numbers remembered for the publish dedupe.
const RECENT_CAPACITY: usize = 4096;

struct Inner {
    store: Arc<dyn BusLog>,
    config: BusConfig,
    live: broadcast::Sender<StoredEvent>,
    /// Per topic: the highest published seq; workers wait on it.
    wakers: Mutex<HashMap<EventType, watch::Sender<i64>>>,
    /// Per (group, topic): the worker's control channel. Dropping it stops the worker.
    workers: Mutex<HashMap<(String, EventType), mpsc::UnboundedSender<Control>>>,
    recent: Mutex<Recent<i64>>,
    log: Arc<PublishedLog>,
    /// Wakes the resync task (see [`resync_loop`]); started with the first subscription.
    resync: Arc<Notify>,
    resync_started: std::sync::Once,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The resync task finds the bus gone and ends.
        self.resync.notify_one();
    }
}

/// The in-process [`EventBus`]. Clones share the same workers.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryBus {
    pub fn new(store: Arc<dyn BusLog>) -> Self {
        Self::with_config(store, BusConfig::default())
    }

    pub fn with_config(store: Arc<dyn BusLog>, config: BusConfig) -> Self {
        let (live, _) = broadcast::channel(config.watch_capacity.max(1));
        Self {
            inner: Arc::new(Inner {
                store,
                live,
                wakers: Mutex::default(),
                workers: Mutex::default(),
                recent: Mutex::new(Recent::new(RECENT_CAPACITY)),
                log: Arc::new(PublishedLog::new(
                    config.published_capacity,
                    config.published_capacity_bytes,
                )),
                resync: Arc::new(Notify::new()),
                resync_started: std::sync::Once::new(),
                config,
            }),
        }
    }

    fn waker(&self, topic: EventType) -> watch::Sender<i64> {
        lock(&self.inner.wakers)
            .entry(topic)
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// The control channel of the (group, topic) worker, spawning the worker if needed.
    fn worker(&self, group: &str, topic: EventType) -> mpsc::UnboundedSender<Control> {
        let wake = self.waker(topic).subscribe();
        let mut workers = lock(&self.inner.workers);
        let key = (group.to_owned(), topic);
        if let Some(tx) = workers.get(&key).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = GroupWorker::new(
            group.to_owned(),
            topic,
            self.inner.store.clone(),
            self.inner.log.clone(),
            self.inner.config.clone(),
            rx,
            wake,
        );
        tokio::spawn(worker.run());
        workers.insert(key, tx.clone());
        tx
    }

    /// Asks the resync task to close a gap in the published log (starting the task first).
    fn resync(&self) {
        self.inner.resync_started.call_once(|| {
            tokio::spawn(resync_loop(
                Arc::downgrade(&self.inner),
                self.inner.resync.clone(),
            ));
        });
        self.inner.resync.notify_one();
    }
}

/// Closes gaps in the published log from the store while the bus lives: at once for the first
/// frontier, after `gap_wait` for a gap (out-of-order publishes usually close it meanwhile).
async fn resync_loop(bus: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        loop {
            let Some(inner) = bus.upgrade() else { return };
            if !inner.log.stalled() {
                break;
            }
            let wait = if inner.log.frontier().is_some() {
                inner.config.gap_wait
            } else {
                Duration::ZERO
            };
            drop(inner);
            tokio::time::sleep(wait).await;
            let Some(inner) = bus.upgrade() else { return };
            if !inner.log.stalled() {
                break;
            }
            if let Err(e) = inner
                .log
                .resync(inner.store.as_ref(), inner.config.batch_size)
                .await
            {
                tracing::warn!(error = %e, "cannot read the event log to close a gap; consumers read the store meanwhile");
                let retry = inner.config.poll_interval;
                drop(inner);
                tokio::time::sleep(retry).await;
            }
        }
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: &StoredEvent) -> Result<(), BusError> {
        if !lock(&self.inner.recent).first_time(event.seq) {
            return Ok(());
        }
        // In the log before the consumers wake, so they find it there.
        if self.inner.log.published(event) {
            self.resync();
        }
        self.waker(event.envelope.event_type())
            .send_modify(|last| *last = (*last).max(event.seq));
        // No watcher is not an error.
        let _ = self.inner.live.send(event.clone());
        Ok(())
    }

    /// At least one topic is required. Each subscription buffers at most one delivery, so the
    /// group's work goes to whichever subscription is ready.
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
        if self.inner.log.stalled() {
            self.resync();
        }
        let (tx, rx) = mpsc::channel::<Delivery>(1);
        let unique: HashSet<EventType> = topics.iter().copied().collect();
        for topic in unique {
            self.worker(group, topic)
                .send(Control::Subscribe(tx.clone()))
                .map_err(|_| BusError::Closed)?;
        }
        Ok(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|delivery| (delivery, rx))
        })
        .boxed())
    }

    async fn watch(
        &self,
        topics: &[EventType],
    ) -> Result<BoxStream<'static, StoredEvent>, BusError> {
        let topics: Arc<HashSet<EventType>> = Arc::new(topics.iter().copied().collect());
        let rx = self.inner.live.subscribe();
        Ok(stream::unfold((rx, topics), |(mut rx, topics)| async move {
            loop {
                match rx.recv().await {
                    Ok(event) if topics.contains(&event.envelope.event_type()) => {
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
        .boxed())
    }
}
