//! The published events in memory, so that a group worker woken by a publish takes the new
//! events from here instead of reading the store.
//!
//! A publish only ever carries an event that is already stored, so published events are
//! committed. The log keeps them in `seq` order together with a *frontier*: every event with
//! `base < seq <= frontier` is in the log, and every event with `seq <= frontier` is committed.
//! It rests on the event store's promise that an event never becomes visible before one with a
//! lower `seq` (the committed events are always a prefix of the log, up to numbers that were
//! never used): an event published in the order of its `seq` extends the frontier at once; one
//! that comes early waits above the gap until the events below it are published too. A gap that
//! stays (a number the store skipped, an event stored by another process, a publish lost on the
//! way) is closed by reading the store after the last known `seq` (see
//! [`PublishedLog::resync`]): that read returns every event up to the last one it sees.
//!
//! A worker's store reads stay the fallback: for the periodic poll, for a new subscription, for
//! a cursor older than the log, and while a gap is open.

use std::collections::BTreeMap;
use std::sync::Mutex;

use integr8s_core::error::StoreError;
use integr8s_core::ports::EventStore;
use integr8s_core::{EventType, StoredEvent};

use crate::lock;

/// See the module docs.
pub(crate) struct PublishedLog {
    state: Mutex<State>,
    /// Events kept below the frontier (and waiting above it); older ones are read from the
    /// store.
    capacity: Capacity,
}

/// How much the log keeps, in events and in bytes (see [`approx_bytes`]).
#[derive(Clone, Copy)]
struct Capacity {
    events: usize,
    bytes: usize,
}

/// The memory an event holds, roughly.
fn approx_bytes(event: &StoredEvent) -> usize {
    event.envelope.payload.approx_bytes()
}

#[derive(Default)]
struct State {
    /// `None` until the first [`PublishedLog::resync`].
    frontier: Option<i64>,
    /// The log holds every event with `base < seq <= frontier`.
    base: i64,
    events: BTreeMap<i64, StoredEvent>,
    /// Bytes of `events`.
    bytes: usize,
    /// Published above a gap (`frontier + 1` is missing), waiting for it to close.
    ahead: BTreeMap<i64, StoredEvent>,
    /// Bytes of `ahead`.
    ahead_bytes: usize,
}

impl State {
    /// Moves what waits above the frontier into the log while it is contiguous, and keeps the
    /// log within `capacity`.
    fn advance(&mut self, capacity: Capacity) {
        let Some(mut frontier) = self.frontier else {
            return;
        };
        while let Some(entry) = self.ahead.first_entry() {
            let seq = *entry.key();
            let event = entry.remove();
            let size = approx_bytes(&event);
            self.ahead_bytes = self.ahead_bytes.saturating_sub(size);
            if seq <= frontier {
                continue;
            }
            if seq != frontier + 1 {
                self.ahead_bytes += size;
                self.ahead.insert(seq, event);
                break;
            }
            self.bytes += size;
            self.events.insert(seq, event);
            frontier = seq;
        }
        self.frontier = Some(frontier);
        while self.events.len() > capacity.events || self.bytes > capacity.bytes {
            let Some((seq, event)) = self.events.pop_first() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(approx_bytes(&event));
            self.base = seq;
        }
    }

    /// Keeps an event in the log (below the frontier).
    fn keep(&mut self, event: StoredEvent) {
        self.bytes += approx_bytes(&event);
        if let Some(replaced) = self.events.insert(event.seq, event) {
            self.bytes = self.bytes.saturating_sub(approx_bytes(&replaced));
        }
    }

    /// Forgets everything: the next resync starts again from the store's last `seq`.
    fn reset(&mut self) {
        *self = State::default();
    }
}

impl PublishedLog {
    pub(crate) fn new(events: usize, bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            capacity: Capacity {
                events: events.max(1),
                bytes: bytes.max(1),
            },
        }
    }

    /// Records a published event; `true` when events wait above a gap (a resync is due).
    pub(crate) fn published(&self, event: &StoredEvent) -> bool {
        let mut s = lock(&self.state);
        if s.frontier.is_some_and(|f| event.seq <= f) {
            return false;
        }
        s.ahead_bytes += approx_bytes(event);
        if let Some(replaced) = s.ahead.insert(event.seq, event.clone()) {
            s.ahead_bytes = s.ahead_bytes.saturating_sub(approx_bytes(&replaced));
        }
        s.advance(self.capacity);
        if s.ahead.len() > self.capacity.events || s.ahead_bytes > self.capacity.bytes {
            // A gap that does not close (the store unreachable): start over from the store.
            s.reset();
        }
        s.frontier.is_none() || !s.ahead.is_empty()
    }

    /// Every event with a `seq` up to this one is committed.
    pub(crate) fn frontier(&self) -> Option<i64> {
        lock(&self.state).frontier
    }

    /// Whether a resync is due: no frontier yet, or events wait above a gap.
    pub(crate) fn stalled(&self) -> bool {
        let s = lock(&self.state);
        s.frontier.is_none() || !s.ahead.is_empty()
    }

    /// The events of `topic` with `after < seq <= frontier`, at most `limit`, and the `seq`
    /// up to which they are all of them; `None` when the log does not reach back to `after`.
    pub(crate) fn read(
        &self,
        topic: EventType,
        after: i64,
        limit: usize,
    ) -> Option<(Vec<StoredEvent>, i64)> {
        let s = lock(&self.state);
        let frontier = s.frontier?;
        if after < s.base {
            return None;
        }
        if after >= frontier {
            return Some((Vec::new(), after));
        }
        let mut events = Vec::new();
        for (seq, event) in s.events.range(after + 1..=frontier) {
            if event.envelope.event_type() != topic {
                continue;
            }
            events.push(event.clone());
            if events.len() >= limit {
                return Some((events, *seq));
            }
        }
        Some((events, frontier))
    }

    /// Closes the gap below the events waiting above the frontier (or finds the first
    /// frontier): reads the store after the frontier, whose answer holds every event up to
    /// the last one it returns.
    pub(crate) async fn resync(
        &self,
        store: &dyn EventStore,
        batch: u32,
    ) -> Result<(), StoreError> {
        let Some(from) = self.frontier() else {
            let last = store.last_seq().await?;
            let mut s = lock(&self.state);
            if s.frontier.is_none() {
                s.frontier = Some(last);
                s.base = last;
                s.advance(self.capacity);
            }
            return Ok(());
        };
        let read = store.events_after(&[], from, batch).await?;
        let mut s = lock(&self.state);
        let Some(mut frontier) = s.frontier else {
            // Reset meanwhile: the next resync starts over.
            return Ok(());
        };
        if frontier < from {
            return Ok(());
        }
        for event in read {
            if event.seq > frontier {
                frontier = event.seq;
                s.keep(event);
            }
        }
        s.frontier = Some(frontier);
        s.advance(self.capacity);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integr8s_core::event::{Envelope, EventMetadata, EventPayload};

    fn event(seq: i64) -> StoredEvent {
        let payload = EventPayload::ExecutionQueued {
            execution_id: format!("e{seq}"),
            position_in_queue: None,
            estimated_start_time: None,
        };
        StoredEvent {
            seq,
            envelope: Envelope::new(payload, EventMetadata::new("test", None)),
        }
    }

    fn seqs(log: &PublishedLog, after: i64) -> Option<(Vec<i64>, i64)> {
        log.read(EventType::ExecutionQueued, after, 100)
            .map(|(events, upto)| (events.iter().map(|e| e.seq).collect(), upto))
    }

    fn started_at(last: i64) -> PublishedLog {
        let log = PublishedLog::new(8, usize::MAX);
        {
            let mut s = lock(&log.state);
            s.frontier = Some(last);
            s.base = last;
        }
        log
    }

    #[test]
    fn nothing_is_read_before_the_first_frontier() {
        let log = PublishedLog::new(8, usize::MAX);
        assert!(log.published(&event(1)));
        assert_eq!(seqs(&log, 0), None);
    }

    #[test]
    fn events_published_in_order_extend_the_frontier() {
        let log = started_at(10);
        assert!(!log.published(&event(11)));
        assert!(!log.published(&event(12)));
        assert_eq!(seqs(&log, 10), Some((vec![11, 12], 12)));
        assert_eq!(seqs(&log, 11), Some((vec![12], 12)));
        // Before the log: the store has to be read.
        assert_eq!(seqs(&log, 9), None);
    }

    #[test]
    fn an_early_event_waits_for_the_gap_below_it() {
        let log = started_at(10);
        assert!(log.published(&event(12)));
        assert_eq!(seqs(&log, 10), Some((vec![], 10)));
        assert!(!log.published(&event(11)));
        assert_eq!(seqs(&log, 10), Some((vec![11, 12], 12)));
        assert!(!log.stalled());
    }

    #[test]
    fn the_log_forgets_its_oldest_events_beyond_capacity() {
        let log = started_at(0);
        for seq in 1..=10 {
            log.published(&event(seq));
        }
        assert_eq!(seqs(&log, 1), None);
        assert_eq!(seqs(&log, 2), Some(((3..=10).collect(), 10)));
    }

    #[test]
    fn a_read_stops_at_the_limit() {
        let log = started_at(0);
        for seq in 1..=5 {
            log.published(&event(seq));
        }
        let (events, upto) = log
            .read(EventType::ExecutionQueued, 0, 2)
            .expect("in the log");
        assert_eq!((events.len(), upto), (2, 2));
        // Another topic's events are skipped, and the answer still reaches the frontier.
        assert_eq!(
            log.read(EventType::ExecutionAccepted, 0, 2)
                .map(|(events, upto)| (events.len(), upto)),
            Some((0, 5))
        );
    }

    fn completed(seq: i64, output_bytes: usize) -> StoredEvent {
        let payload = EventPayload::ExecutionCompleted {
            execution_id: format!("e{seq}"),
            exit_code: 0,
            output: integr8s_core::event::RunOutput {
                stdout: "x".repeat(output_bytes),
                ..Default::default()
            },
        };
        StoredEvent {
            seq,
            envelope: Envelope::new(payload, EventMetadata::new("test", None)),
        }
    }

    #[test]
    fn large_events_take_the_room_of_many_small_ones() {
        let log = PublishedLog::new(1000, 3 * 1024 * 1024);
        {
            let mut s = lock(&log.state);
            s.frontier = Some(0);
        }
        // Five outputs of 1 MiB: only the last two fit (with the small events around them).
        for seq in 1..=5 {
            log.published(&completed(seq, 1024 * 1024));
        }
        let kept = |log: &PublishedLog| {
            let s = lock(&log.state);
            (s.events.keys().copied().collect::<Vec<_>>(), s.bytes)
        };
        let (seqs, bytes) = kept(&log);
        assert_eq!(seqs, vec![4, 5]);
        assert!(bytes <= 3 * 1024 * 1024, "{bytes}");
        assert_eq!(
            log.read(EventType::ExecutionCompleted, 3, 10)
                .map(|(e, upto)| (e.len(), upto)),
            Some((2, 5))
        );
        assert_eq!(
            log.read(EventType::ExecutionCompleted, 2, 10)
                .map(|(e, _)| e.len()),
            None
        );
        // Small events do not push out what fits.
        log.published(&event(6));
        assert_eq!(kept(&log).0, vec![4, 5, 6]);
        // Waiting above a gap counts too: past the bound the log starts over from the store.
        log.published(&completed(8, 2 * 1024 * 1024));
        assert!(log.stalled());
        log.published(&completed(9, 2 * 1024 * 1024));
        assert_eq!(log.frontier(), None, "reset");
        assert_eq!(kept(&log), (Vec::new(), 0));
    }
}
