//! The event streams' hub: how many streams are open (per user and overall), and which events
//! go to which stream.
//!
//! One task per process watches the bus and one tails the event store; each routes an event to
//! the streams of its execution (or, for `notification_created`, of its user) by a map lookup,
//! so the cost of N open streams does not grow with events that concern none of them. The store
//! tail delivers what the bus did not bring (events written by a process whose publish was
//! lost, or a watch that fell behind), a little later. Each stream has a bounded channel: when
//! it is full the event is dropped for that stream and the stream is marked lagged, and its
//! relay catches up from the store. Relays remove duplicates by event id.

mod routes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integr8s_core::event::{EventType, StoredEvent};
use integr8s_core::ports::{EventBus, EventStore};
use tokio::sync::mpsc;

use crate::error::ApiError;
use routes::{Key, Routes};

/// Limits of the event streams (`streams.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Streams open at once in this process; beyond: 429.
    pub max_open: usize,
    /// Streams one user may have open at once in this process; beyond: 429.
    pub max_open_per_user: usize,
    /// The notification stream ends (cleanly) after this long; clients reconnect with
    /// `Last-Event-ID` and miss nothing.
    pub notification_lifetime: Duration,
    /// Events (and frames) buffered per stream.
    pub buffer: usize,
    /// How often the store is tailed for events the bus did not deliver.
    pub catch_up_interval: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_open: 1000,
            max_open_per_user: 10,
            notification_lifetime: Duration::from_secs(3600),
            buffer: 64,
            catch_up_interval: Duration::from_secs(2),
        }
    }
}

/// Seconds a client is told to wait when too many streams are open.
const RETRY_AFTER_SECS: u64 = 5;

/// Events tailed from the store per read.
const TAIL_BATCH: u32 = 500;

/// The event types any stream relays.
fn watched_types() -> Vec<EventType> {
    let mut types = crate::routes::sse::BRIDGED_TYPES.to_vec();
    types.push(EventType::NotificationCreated);
    types
}

#[derive(Default)]
struct Open {
    total: usize,
    per_user: HashMap<String, usize>,
}

struct Inner {
    limits: StreamLimits,
    open: Mutex<Open>,
    routes: Mutex<Routes>,
    started: AtomicBool,
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct StreamHub {
    inner: Arc<Inner>,
}

/// A place among the open streams, given back when dropped.
pub struct StreamPermit {
    inner: Arc<Inner>,
    user_id: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = lock(&self.inner.open);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_user.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_user.remove(&self.user_id);
            }
        }
    }
}

/// The events routed to one stream; unsubscribes when dropped.
pub struct Subscription {
    inner: Arc<Inner>,
    key: Key,
    id: u64,
    rx: mpsc::Receiver<StoredEvent>,
    lagged: Arc<AtomicBool>,
}

impl Subscription {
    /// The next routed event; `None` only when the hub is gone.
    pub async fn next(&mut self) -> Option<StoredEvent> {
        self.rx.recv().await
    }

    /// Whether events were dropped for this stream since the last call (then the relay must
    /// catch up from the store).
    pub fn take_lagged(&self) -> bool {
        self.lagged.swap(false, Ordering::AcqRel)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.inner.routes).remove(&self.key, self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StreamHub {
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                open: Mutex::new(Open::default()),
                routes: Mutex::new(Routes::default()),
                started: AtomicBool::new(false),
            }),
        }
    }

    pub fn limits(&self) -> StreamLimits {
        self.inner.limits
    }

    /// Takes a place for a new stream of `user_id`, or answers 429 when the user or the process
    /// has as many open as allowed.
    pub fn open(&self, user_id: &str) -> Result<StreamPermit, ApiError> {
        let limits = self.inner.limits;
        let mut open = lock(&self.inner.open);
        let mine = open.per_user.get(user_id).copied().unwrap_or(0);
        let detail = if open.total >= limits.max_open {
            Some("Too many event streams are open on this server; retry later".to_owned())
        } else if mine >= limits.max_open_per_user {
            Some(format!(
                "At most {} event streams may be open per user; close one first",
                limits.max_open_per_user
            ))
        } else {
            None
        };
        if let Some(detail) = detail {
            return Err(ApiError::TooManyRequests {
                kind: "TooManyStreamsError",
                detail,
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        open.total += 1;
        *open.per_user.entry(user_id.to_owned()).or_insert(0) += 1;
        Ok(StreamPermit {
            inner: self.inner.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// Streams open now (overall).
    pub fn open_count(&self) -> usize {
        lock(&self.inner.open).total
    }

    /// The events of one execution, from now on.
    pub fn execution(
        &self,
        store: Arc<dyn EventStore>,
        bus: &Arc<dyn EventBus>,
        id: &str,
    ) -> Subscription {
        self.subscribe(store, bus, Key::Execution(id.to_owned()))
    }

    /// The `notification_created` events of one user, from now on.
    pub fn notifications(
        &self,
        store: Arc<dyn EventStore>,
        bus: &Arc<dyn EventBus>,
        user_id: &str,
    ) -> Subscription {
        self.subscribe(store, bus, Key::User(user_id.to_owned()))
    }

    fn subscribe(
        &self,
        store: Arc<dyn EventStore>,
        bus: &Arc<dyn EventBus>,
        key: Key,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(self.inner.limits.buffer.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let id = lock(&self.inner.routes).add(key.clone(), tx, lagged.clone());
        self.start(store, bus);
        Subscription {
            inner: self.inner.clone(),
            key,
            id,
            rx,
            lagged,
        }
    }

    /// Starts the bus watch and the store tail once, with the first stream.
    fn start(&self, store: Arc<dyn EventStore>, bus: &Arc<dyn EventBus>) {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(watch_bus(weak.clone(), bus.clone()));
        tokio::spawn(tail_store(weak, store, self.inner.limits.catch_up_interval));
    }
}

fn dispatch(inner: &Inner, event: &StoredEvent) {
    lock(&inner.routes).dispatch(event);
}

/// Routes what the bus watch brings; watches again after the watch ends or fails.
async fn watch_bus(inner: std::sync::Weak<Inner>, bus: Arc<dyn EventBus>) {
    use futures::StreamExt;
    let types = watched_types();
    loop {
        match bus.watch(&types).await {
            Ok(mut watch) => {
                while let Some(event) = watch.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    dispatch(&inner, &event);
                }
            }
            Err(e) => tracing::warn!(error = %e, "streams: bus watch failed; retrying"),
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Routes events from the store that came after the last one tailed, every `interval`. While
/// no stream is open only the log's end is read, so the tail starts from there when one opens
/// (that stream's own backfill covers what came before).
async fn tail_store(inner: std::sync::Weak<Inner>, store: Arc<dyn EventStore>, interval: Duration) {
    let types = watched_types();
    let mut tail: Option<i64> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = inner.upgrade() else { return };
        if tail.is_none() || lock(&hub.routes).is_empty() {
            let end = match store.last_seq().await {
                Ok(end) => end,
                Err(e) => {
                    tracing::warn!(error = %e, "streams: reading the log's end failed");
                    continue;
                }
            };
            if lock(&hub.routes).is_empty() {
                tail = Some(end);
                continue;
            }
            // A stream opened while the end was read: start a little earlier.
            tail = Some(tail.unwrap_or((end - i64::from(TAIL_BATCH)).max(0)));
        }
        let mut from = tail.unwrap_or(0);
        loop {
            match store.events_after(&types, from, TAIL_BATCH).await {
                Ok(events) => {
                    for event in &events {
                        dispatch(&hub, event);
                        from = from.max(event.seq);
                    }
                    tail = Some(from);
                    if events.len() < TAIL_BATCH as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "streams: tailing the store failed");
                    break;
                }
            }
        }
    }
}
