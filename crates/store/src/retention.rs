//! The statements of a retention pass, shared by every dialect: `{c}` stands for the cutoff
//! parameter and `{b}` for the batch size. Each statement's subquery picks the same oldest rows
//! (a total order), so dependents go before the rows they belong to; only the steps marked
//! `counted` count towards the rows reported deleted.

use integr8s_core::ports::replay::ReplayStatus;
use integr8s_core::ports::retention::{RetentionKind, AUDIT_EVENT_TYPES};

/// One statement of a retention pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Its deleted rows count towards the rows reported deleted.
    pub counted: bool,
    /// It takes the batch size as its second parameter (every step takes the cutoff first).
    pub batched: bool,
    pub sql: String,
}

impl Step {
    fn new(counted: bool, batched: bool, sql: impl Into<String>) -> Self {
        Self {
            counted,
            batched,
            sql: sql.into(),
        }
    }
}

/// Event types kept out of the event retention: user settings are event-sourced, so their
/// events are the settings themselves, not a log.
const STATE_EVENT_TYPES: [&str; 1] = ["user_settings_updated"];

fn quoted(names: impl IntoIterator<Item = &'static str>) -> String {
    names
        .into_iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn audit_types() -> String {
    quoted(AUDIT_EVENT_TYPES.iter().map(|t| t.as_str()))
}

const FINISHED_EXECUTIONS: &str = "SELECT execution_id FROM executions
     WHERE updated_at < {c} AND status IN ('completed', 'failed', 'timeout', 'cancelled', 'error')
     ORDER BY updated_at, execution_id LIMIT {b}";

const OLD_NOTIFICATIONS: &str = "SELECT notification_id FROM notifications
     WHERE created_at < {c} ORDER BY created_at, notification_id LIMIT {b}";

/// Replay sessions a purge may delete: finished ones and those never started.
pub(crate) fn purgeable_replay_statuses() -> String {
    quoted(
        ReplayStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal() || *s == ReplayStatus::Created)
            .map(ReplayStatus::as_str),
    )
}

/// The statements deleting at most `{b}` rows of `kind` older than `{c}`, in order.
pub(crate) fn statements(kind: RetentionKind, c: &str, b: &str) -> Vec<Step> {
    let steps: Vec<Step> = match kind {
        RetentionKind::Events => {
            let kept = format!("{}, {}", audit_types(), quoted(STATE_EVENT_TYPES));
            vec![
                Step::new(
                    true,
                    true,
                    format!(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                         WHERE timestamp < {{c}} AND event_type NOT IN ({kept})
                         ORDER BY seq LIMIT {{b}})"
                    ),
                ),
                Step::new(
                    false,
                    true,
                    "DELETE FROM events_archive WHERE event_id IN (SELECT event_id
                     FROM events_archive WHERE deleted_at < {c}
                     ORDER BY deleted_at, event_id LIMIT {b})",
                ),
            ]
        }
        RetentionKind::Executions => {
            let mut steps: Vec<Step> = ["queue_entries", "sagas", "resource_allocations"]
                .iter()
                .map(|table| {
                    Step::new(
                        false,
                        true,
                        format!(
                            "DELETE FROM {table} WHERE execution_id IN ({FINISHED_EXECUTIONS})"
                        ),
                    )
                })
                .collect();
            steps.push(Step::new(
                true,
                true,
                format!("DELETE FROM executions WHERE execution_id IN ({FINISHED_EXECUTIONS})"),
            ));
            steps.push(Step::new(false, false, STALE_TURNS));
            steps
        }
        RetentionKind::Notifications => vec![
            Step::new(
                false,
                true,
                format!(
                    "DELETE FROM notification_deliveries
                     WHERE notification_id IN ({OLD_NOTIFICATIONS})"
                ),
            ),
            Step::new(
                true,
                true,
                format!("DELETE FROM notifications WHERE notification_id IN ({OLD_NOTIFICATIONS})"),
            ),
        ],
        RetentionKind::Audit => vec![
            Step::new(
                true,
                true,
                "DELETE FROM settings_audit_log WHERE seq IN (SELECT seq FROM settings_audit_log
                 WHERE timestamp < {c} ORDER BY seq LIMIT {b})",
            ),
            Step::new(
                true,
                true,
                format!(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                     WHERE timestamp < {{c}} AND event_type IN ({})
                     ORDER BY seq LIMIT {{b}})",
                    audit_types()
                ),
            ),
        ],
        RetentionKind::ReplaySessions => vec![Step::new(
            true,
            true,
            format!(
                "DELETE FROM replay_sessions WHERE session_id IN (SELECT session_id
                 FROM replay_sessions WHERE created_at < {{c}} AND status IN ({})
                 ORDER BY created_at, session_id LIMIT {{b}})",
                purgeable_replay_statuses()
            ),
        )],
    };
    steps
        .into_iter()
        .map(|step| Step {
            sql: step.sql.replace("{c}", c).replace("{b}", b),
            ..step
        })
        .collect()
}

/// Takes or renews a lease; `{n}` name, `{h}` holder, `{u}` until, `{now}` now. Changes one row
/// exactly when the holder has the lease afterwards.
pub(crate) const TAKE_LEASE: &str =
    "INSERT INTO sweep_leases (name, holder, expires_at) VALUES ({n}, {h}, {u})
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE sweep_leases.expires_at <= {now} OR sweep_leases.holder = excluded.holder";

/// Queue turns of users with nothing queued and no claim since `{c}`: nothing to be fair about.
const STALE_TURNS: &str = "DELETE FROM queue_turns WHERE last_claim_at < {c}
     AND user_id NOT IN (SELECT user_id FROM queue_entries)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_steps_are_those_that_take_the_batch() {
        for kind in RetentionKind::ALL {
            let steps = statements(kind, "<cutoff>", "<batch>");
            assert!(!steps.is_empty(), "{kind:?} has statements");
            assert!(steps.iter().any(|s| s.counted), "{kind:?} counts a step");
            for step in steps {
                assert!(step.sql.contains("<cutoff>"), "{kind:?}: {}", step.sql);
                assert_eq!(
                    step.batched,
                    step.sql.contains("<batch>"),
                    "{kind:?}: {}",
                    step.sql
                );
                assert!(!step.sql.contains('{'), "{kind:?}: {}", step.sql);
            }
        }
    }

    #[test]
    fn replay_purge_takes_finished_and_unstarted_sessions() {
        assert_eq!(
            purgeable_replay_statuses(),
            "'created', 'completed', 'failed', 'cancelled'"
        );
    }
}
