//! What one group member holds of its assigned partitions: the messages read and not yet
//! committed, which of them are handed out, acknowledged or waiting for redelivery, and the
//! offsets that may be committed. No I/O: the subscription task and the rebalance callbacks
//! drive it.
//!
//! Rules: within a partition, a message is not handed out while an earlier unacknowledged
//! message with the same key (aggregate) is pending; the committed offset of a partition only
//! passes messages that are acknowledged (or dead-lettered), together with every earlier one.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use integr8s_core::StoredEvent;

/// Topic and partition.
pub(crate) type Tp = (String, i32);

/// A message that could not be decoded, kept as read for the DLQ topic.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Event(Box<StoredEvent>),
    Poison(Raw),
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Ready,
    Out,
    Backoff(Instant),
    /// To be written to the DLQ topic, for this reason.
    DeadLetter(String),
    /// Being written to the DLQ topic.
    DeadLettering,
    Acked,
}

struct Entry {
    body: Body,
    /// The ordering key: the event's aggregate id.
    key: Option<String>,
    attempt: u32,
    stage: Stage,
}

struct Partition {
    generation: u64,
    entries: BTreeMap<i64, Entry>,
    /// The offset after the last message read.
    next: Option<i64>,
    /// The last committed offset (the next one to read after a restart).
    committed: Option<i64>,
    paused: bool,
    revoking: bool,
}

/// Names one hand-out of one message, to settle it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tp: Tp,
    pub offset: i64,
    /// The assignment it was handed out under: a settle after a revoke is ignored.
    pub generation: u64,
    pub attempt: u32,
}

/// One delivery to hand out.
pub(crate) struct Handout {
    pub token: Token,
    pub event: StoredEvent,
}

/// One message to write to the DLQ topic.
pub(crate) struct DeadLetter {
    pub tp: Tp,
    pub offset: i64,
    pub generation: u64,
    pub body: Body,
    pub reason: String,
}

/// What a settle did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Acked,
    Redeliver,
    DeadLetter,
    /// Stale: the partition was revoked or the delivery already settled.
    Ignored,
}

#[derive(Default)]
pub(crate) struct Partitions {
    parts: BTreeMap<Tp, Partition>,
    generation: u64,
    /// Where the next hand-out search starts, so partitions take turns.
    turn: usize,
    /// Something was acknowledged since the last commit of all partitions.
    dirty: bool,
}

impl Partitions {
    /// New partitions were assigned to this member.
    pub(crate) fn assign(&mut self, tps: impl IntoIterator<Item = Tp>) {
        self.generation += 1;
        for tp in tps {
            self.parts.insert(
                tp,
                Partition {
                    generation: self.generation,
                    entries: BTreeMap::new(),
                    next: None,
                    committed: None,
                    paused: false,
                    revoking: false,
                },
            );
        }
    }

    /// Stops handing out messages of `tps` (they are being revoked).
    pub(crate) fn start_revoke(&mut self, tps: &[Tp]) {
        for tp in tps {
            if let Some(p) = self.parts.get_mut(tp) {
                p.revoking = true;
            }
        }
    }

    /// Whether a delivery of one of `tps` is handed out and unsettled.
    pub(crate) fn any_out(&self, tps: &[Tp]) -> bool {
        tps.iter().any(|tp| {
            self.parts
                .get(tp)
                .is_some_and(|p| p.entries.values().any(|e| e.stage == Stage::Out))
        })
    }

    /// Forgets `tps` (after their final commit).
    pub(crate) fn remove(&mut self, tps: &[Tp]) {
        for tp in tps {
            self.parts.remove(tp);
        }
    }

    /// A message was read. Returns false if it is not for this member (any more) or already
    /// held.
    pub(crate) fn receive(&mut self, tp: Tp, offset: i64, body: Body) -> bool {
        let Some(p) = self.parts.get_mut(&tp) else {
            return false;
        };
        if p.revoking
            || p.entries.contains_key(&offset)
            || p.next.is_some_and(|n| offset < n)
            || p.committed.is_some_and(|c| offset < c)
        {
            return false;
        }
        let (key, stage) = match &body {
            Body::Event(e) => (e.envelope.aggregate_id.clone(), Stage::Ready),
            Body::Poison(_) => (None, Stage::DeadLetter("undecodable message".to_owned())),
        };
        p.entries.insert(
            offset,
            Entry {
                body,
                key,
                attempt: 1,
                stage,
            },
        );
        p.next = Some(offset + 1);
        true
    }

    /// Moves due redeliveries back to ready and acks, without handing them out, messages
    /// whose event id `is_done` says this group has already acknowledged (duplicates).
    /// Returns the earliest pending redelivery time.
    pub(crate) fn prepare(
        &mut self,
        now: Instant,
        is_done: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for p in self.parts.values_mut() {
            for e in p.entries.values_mut() {
                match &e.stage {
                    Stage::Backoff(at) if *at <= now => {
                        e.attempt += 1;
                        e.stage = Stage::Ready;
                    }
                    Stage::Backoff(at) => {
                        earliest = Some(earliest.map_or(*at, |x| x.min(*at)));
                    }
                    _ => {}
                }
                if e.stage == Stage::Ready {
                    if let Body::Event(ev) = &e.body {
                        if is_done(&ev.envelope.event_id) {
                            e.stage = Stage::Acked;
                            self.dirty = true;
                        }
                    }
                }
            }
        }
        earliest
    }

    /// The next message to hand out, if any (without taking it).
    fn pick(&self) -> Option<(Tp, i64)> {
        let n = self.parts.len();
        let tps: Vec<&Tp> = self.parts.keys().collect();
        for i in 0..n {
            let tp = tps[(self.turn + i) % n];
            let p = &self.parts[tp];
            if p.revoking {
                continue;
            }
            let mut blocked: HashSet<&str> = HashSet::new();
            for (offset, e) in &p.entries {
                let key = e.key.as_deref();
                match e.stage {
                    Stage::Acked => {}
                    Stage::Ready if key.is_none_or(|k| !blocked.contains(k)) => {
                        return Some((tp.clone(), *offset));
                    }
                    _ => {
                        if let Some(k) = key {
                            blocked.insert(k);
                        }
                    }
                }
            }
        }
        None
    }

    pub(crate) fn has_handout(&self) -> bool {
        self.pick().is_some()
    }

    /// Takes the next message to hand out and marks it out.
    pub(crate) fn take(&mut self) -> Option<Handout> {
        let (tp, offset) = self.pick()?;
        let index = self.parts.keys().position(|k| *k == tp).unwrap_or(0);
        self.turn = index + 1;
        let p = self.parts.get_mut(&tp)?;
        let generation = p.generation;
        let e = p.entries.get_mut(&offset)?;
        let Body::Event(event) = &e.body else {
            return None;
        };
        e.stage = Stage::Out;
        Some(Handout {
            token: Token {
                tp,
                offset,
                generation,
                attempt: e.attempt,
            },
            event: StoredEvent::clone(event),
        })
    }

    /// Settles a handed-out delivery. A nack of the `max_attempts`-th delivery (0: never)
    /// dead-letters the message; other nacks schedule a redelivery at `retry_at`.
    pub(crate) fn settle(
        &mut self,
        token: &Token,
        ack: bool,
        max_attempts: u32,
        retry_at: Instant,
    ) -> Settled {
        let attempt = token.attempt;
        let Some(p) = self
            .parts
            .get_mut(&token.tp)
            .filter(|p| p.generation == token.generation)
        else {
            return Settled::Ignored;
        };
        let Some(e) = p.entries.get_mut(&token.offset) else {
            return Settled::Ignored;
        };
        if e.stage != Stage::Out || e.attempt != attempt {
            return Settled::Ignored;
        }
        if ack {
            e.stage = Stage::Acked;
            self.dirty = true;
            Settled::Acked
        } else if max_attempts > 0 && attempt >= max_attempts {
            e.stage = Stage::DeadLetter(format!("not acknowledged after {attempt} deliveries"));
            Settled::DeadLetter
        } else {
            e.stage = Stage::Backoff(retry_at);
            Settled::Redeliver
        }
    }

    /// Takes the messages waiting to be written to the DLQ topic.
    pub(crate) fn take_dead_letters(&mut self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            for (offset, e) in &mut p.entries {
                if let Stage::DeadLetter(reason) = &e.stage {
                    out.push(DeadLetter {
                        tp: tp.clone(),
                        offset: *offset,
                        generation: p.generation,
                        body: e.body.clone(),
                        reason: reason.clone(),
                    });
                    e.stage = Stage::DeadLettering;
                }
            }
        }
        out
    }

    /// The DLQ write of a message ended: written counts as acknowledged, otherwise it is
    /// tried again.
    pub(crate) fn dead_lettered(&mut self, letter: &DeadLetter, written: bool) {
        let Some(p) = self
            .parts
            .get_mut(&letter.tp)
            .filter(|p| p.generation == letter.generation)
        else {
            return;
        };
        self.dirty |= written;
        if let Some(e) = p.entries.get_mut(&letter.offset) {
            e.stage = if written {
                Stage::Acked
            } else {
                Stage::DeadLetter(letter.reason.clone())
            };
        }
    }

    /// Offsets to commit for `only` (all partitions when `None`): per partition the first
    /// message not yet acknowledged, or the end of what was read; only those that moved
    /// forward. Marks them committed.
    pub(crate) fn take_commits(&mut self, only: Option<&[Tp]>) -> Vec<(Tp, i64)> {
        if only.is_none() {
            self.dirty = false;
        }
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            if only.is_some_and(|o| !o.contains(tp)) {
                continue;
            }
            while let Some(entry) = p.entries.first_entry() {
                if entry.get().stage != Stage::Acked {
                    break;
                }
                entry.remove();
            }
            let position = p.entries.keys().next().copied().or(p.next);
            if let Some(position) = position {
                if p.committed.is_none_or(|c| position > c) {
                    p.committed = Some(position);
                    out.push((tp.clone(), position));
                }
            }
        }
        out
    }

    pub(crate) fn dirty(&self) -> bool {
        self.dirty
    }

    /// A commit failed: everything is committed again at the next commit.
    pub(crate) fn forget_commits(&mut self) {
        self.dirty = true;
        for p in self.parts.values_mut() {
            p.committed = None;
        }
    }

    /// Partitions to pause (holding `max` messages or more) and to resume (paused, now
    /// holding at most half of `max`).
    pub(crate) fn flow(&mut self, max: usize) -> (Vec<Tp>, Vec<Tp>) {
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for (tp, p) in &mut self.parts {
            let held = p.entries.len();
            if !p.paused && held >= max {
                p.paused = true;
                pause.push(tp.clone());
            } else if p.paused && held <= max / 2 {
                p.paused = false;
                resume.push(tp.clone());
            }
        }
        (pause, resume)
    }
}

#[cfg(test)]
mod tests;
