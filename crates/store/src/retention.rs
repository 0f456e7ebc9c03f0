//! The statements of a retention pass, shared by every dialect: `{c}` stands for the cutoff
//! parameter and `{b}` for the batch size. Each statement's subquery picks the same oldest rows
//! (a total order), so dependents go before the rows they belong to; only the statement marked
//! `true` counts towards the rows reported deleted.

use integr8s_core::ports::retention::{RetentionKind, AUDIT_EVENT_TYPES};

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

/// The statements deleting at most `{b}` rows of `kind` older than `{c}`, in order; `None` for
/// replay sessions, which the adapters delete through their own port method.
pub(crate) fn statements(kind: RetentionKind, c: &str, b: &str) -> Option<Vec<(bool, String)>> {
    let steps: Vec<(bool, String)> = match kind {
        RetentionKind::Events => {
            let kept = format!("{}, {}", audit_types(), quoted(STATE_EVENT_TYPES));
            vec![
                (
                    true,
                    format!(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                         WHERE timestamp < {{c}} AND event_type NOT IN ({kept})
                         ORDER BY seq LIMIT {{b}})"
                    ),
                ),
                (
                    false,
                    "DELETE FROM events_archive WHERE event_id IN (SELECT event_id
                     FROM events_archive WHERE deleted_at < {c}
                     ORDER BY deleted_at, event_id LIMIT {b})"
                        .to_owned(),
                ),
            ]
        }
        RetentionKind::Executions => {
            let mut steps: Vec<(bool, String)> = ["queue_entries", "sagas", "resource_allocations"]
                .iter()
                .map(|table| {
                    (
                        false,
                        format!(
                            "DELETE FROM {table} WHERE execution_id IN ({FINISHED_EXECUTIONS})"
                        ),
                    )
                })
                .collect();
            steps.push((
                true,
                format!("DELETE FROM executions WHERE execution_id IN ({FINISHED_EXECUTIONS})"),
            ));
            steps.push((false, STALE_TURNS.to_owned()));
            steps
        }
        RetentionKind::Notifications => vec![
            (
                false,
                format!(
                    "DELETE FROM notification_deliveries
                     WHERE notification_id IN ({OLD_NOTIFICATIONS})"
                ),
            ),
            (
                true,
                format!("DELETE FROM notifications WHERE notification_id IN ({OLD_NOTIFICATIONS})"),
            ),
        ],
        RetentionKind::Audit => vec![
            (
                true,
                "DELETE FROM settings_audit_log WHERE seq IN (SELECT seq FROM settings_audit_log
                 WHERE timestamp < {c} ORDER BY seq LIMIT {b})"
                    .to_owned(),
            ),
            (
                true,
                format!(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                     WHERE timestamp < {{c}} AND event_type IN ({})
                     ORDER BY seq LIMIT {{b}})",
                    audit_types()
                ),
            ),
        ],
        RetentionKind::ReplaySessions => return None,
    };
    Some(
        steps
            .into_iter()
            .map(|(counted, sql)| (counted, sql.replace("{c}", c).replace("{b}", b)))
            .collect(),
    )
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
