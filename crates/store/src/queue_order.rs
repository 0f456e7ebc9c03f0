//! The claim order of the execution queue, shared by every dialect: which pending entry a claim
//! takes, and how many entries are ahead of one.
//!
//! Fair share: an entry's waiting time, which ages it by one priority level per
//! `ageing_seconds`, counts from its enqueue or from its user's last claim, whichever is later,
//! so a backlog does not gather age while its user is being served. At equal effective rank the
//! user with fewer active entries goes first, then the user served longest ago (or never), and
//! only then the oldest entry: users take turns instead of one user's backlog going first.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use integr8s_core::ports::{QueueEntry, QueuePolicy};

/// A user's last claim: a number that grows with every claim, and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Turn {
    pub seq: i64,
    pub at: DateTime<Utc>,
}

/// What the order knows about the users: active entries and last claims.
#[derive(Debug, Clone, Default)]
pub(crate) struct Users {
    pub active: HashMap<String, i64>,
    pub turns: HashMap<String, Turn>,
}

impl Users {
    fn active(&self, user_id: &str) -> i64 {
        self.active.get(user_id).copied().unwrap_or(0)
    }

    /// The user's last claim number; users never served come first.
    fn turn(&self, user_id: &str) -> i64 {
        self.turns.get(user_id).map_or(i64::MIN, |t| t.seq)
    }

    /// Records a claim for `user_id` at `now`, as the store does.
    fn served(&mut self, user_id: &str, now: DateTime<Utc>) {
        let next = self.turns.values().map(|t| t.seq).max().unwrap_or(0) + 1;
        *self.active.entry(user_id.to_owned()).or_insert(0) += 1;
        self.turns
            .insert(user_id.to_owned(), Turn { seq: next, at: now });
    }
}

/// The rank an entry competes with at `now`: its priority's rank minus one per full
/// `ageing_seconds` waited since it was enqueued or its user was last served (lower is better;
/// may go below zero). No ageing when `ageing_seconds` is 0.
pub(crate) fn effective_rank(
    entry: &QueueEntry,
    users: &Users,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> i64 {
    let base = entry.priority.rank();
    if policy.ageing_seconds == 0 {
        return base;
    }
    let since = match users.turns.get(&entry.user_id) {
        Some(turn) if turn.at > entry.enqueued_at => turn.at,
        _ => entry.enqueued_at,
    };
    let waited = (now - since).num_seconds().max(0);
    base - waited / i64::from(policy.ageing_seconds)
}

/// The claim order: better effective rank, fewer active entries of the user, the user served
/// longest ago, the oldest entry, then the id for a total order.
fn order(
    a: &QueueEntry,
    b: &QueueEntry,
    users: &Users,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> Ordering {
    effective_rank(a, users, policy, now)
        .cmp(&effective_rank(b, users, policy, now))
        .then_with(|| users.active(&a.user_id).cmp(&users.active(&b.user_id)))
        .then_with(|| users.turn(&a.user_id).cmp(&users.turn(&b.user_id)))
        .then(a.enqueued_at.cmp(&b.enqueued_at))
        .then_with(|| a.execution_id.cmp(&b.execution_id))
}

/// The pending entry a claim takes; `None` when the global cap is reached or every waiting user
/// is at their cap.
pub(crate) fn next_to_claim(
    pending: Vec<QueueEntry>,
    users: &Users,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> Option<QueueEntry> {
    let active_total: i64 = users.active.values().sum();
    if active_total >= i64::from(policy.max_active) {
        return None;
    }
    let cap = i64::from(policy.max_active_per_user);
    pending
        .into_iter()
        .filter(|e| users.active(&e.user_id) < cap)
        .min_by(|a, b| order(a, b, users, policy, now))
}

/// Most pending entries whose claims are played out to find a position; past it, entries are
/// counted by the order at `now` alone.
const SIMULATED: usize = 2_000;

/// How many pending entries claims would take before `execution_id` (caps aside: every claim is
/// assumed to find a slot); `None` when it is not among `pending`.
pub(crate) fn position(
    pending: &[QueueEntry],
    users: &Users,
    execution_id: &str,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> Option<u64> {
    let target = pending.iter().find(|e| e.execution_id == execution_id)?;
    if pending.len() > SIMULATED {
        let ahead = pending
            .iter()
            .filter(|e| order(e, target, users, policy, now) == Ordering::Less)
            .count();
        return Some(ahead as u64);
    }
    let mut users = users.clone();
    let mut left: Vec<&QueueEntry> = pending.iter().collect();
    let mut ahead = 0u64;
    loop {
        let (index, next) = left
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| order(a, b, &users, policy, now))?;
        if next.execution_id == execution_id {
            return Some(ahead);
        }
        let user = next.user_id.clone();
        left.swap_remove(index);
        users.served(&user, now);
        ahead += 1;
    }
}
