//! The claim order of the execution queue, shared by every dialect: which pending entry a claim
//! takes, and how many entries are ahead of one.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use integr8s_core::ports::{QueueEntry, QueuePolicy};

/// The rank an entry competes with at `now`: its priority's rank minus one per full
/// `ageing_seconds` waited (lower is better; may go below zero). No ageing when
/// `ageing_seconds` is 0.
pub(crate) fn effective_rank(entry: &QueueEntry, policy: &QueuePolicy, now: DateTime<Utc>) -> i64 {
    let base = entry.priority.rank();
    if policy.ageing_seconds == 0 {
        return base;
    }
    let waited = (now - entry.enqueued_at).num_seconds().max(0);
    base - waited / i64::from(policy.ageing_seconds)
}

/// The claim order: better effective rank first, then the oldest, then the id for a total order.
fn order(a: &QueueEntry, b: &QueueEntry, policy: &QueuePolicy, now: DateTime<Utc>) -> Ordering {
    effective_rank(a, policy, now)
        .cmp(&effective_rank(b, policy, now))
        .then(a.enqueued_at.cmp(&b.enqueued_at))
        .then_with(|| a.execution_id.cmp(&b.execution_id))
}

/// The pending entry a claim takes, given the active entries per user; `None` when the global
/// cap is reached or every waiting user is at their cap.
pub(crate) fn next_to_claim(
    pending: Vec<QueueEntry>,
    active_per_user: &HashMap<String, i64>,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> Option<QueueEntry> {
    let active_total: i64 = active_per_user.values().sum();
    if active_total >= i64::from(policy.max_active) {
        return None;
    }
    let cap = i64::from(policy.max_active_per_user);
    pending
        .into_iter()
        .filter(|e| active_per_user.get(&e.user_id).copied().unwrap_or(0) < cap)
        .min_by(|a, b| order(a, b, policy, now))
}

/// How many pending entries a claim would take before `execution_id`; `None` when it is not
/// among `pending`.
pub(crate) fn position(
    pending: &[QueueEntry],
    execution_id: &str,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
) -> Option<u64> {
    let target = pending.iter().find(|e| e.execution_id == execution_id)?;
    let ahead = pending
        .iter()
        .filter(|e| order(e, target, policy, now) == Ordering::Less)
        .count();
    Some(ahead as u64)
}
