//! What deleting a user with its data removes, listed table by table for every dialect, so a new
//! table that holds per-user rows is added here on purpose rather than found by its columns.
//!
//! Kept on purpose: the user row itself (deleted by the caller), the settings audit log and the
//! events archive (audit trails).

use integr8s_core::ports::admin::UserDeletion;

/// Which count of [`UserDeletion`] a statement's deleted rows add to.
#[derive(Clone, Copy)]
pub(crate) enum Counted {
    Events,
    UserSettings,
    Sagas,
    Executions,
    SavedScripts,
    Notifications,
    Uncounted,
}

/// The user's executions; `{u}` stands for the user id parameter.
const OF_USER: &str = "SELECT execution_id FROM executions WHERE user_id = {u}";

/// The deletions in order (dependents before `executions`); `{u}` stands for the user id
/// parameter and `{of_user}` for the user's executions.
const STEPS: &[(Counted, &str)] = &[
    // Settings are event-sourced: their change events count as settings, not as events.
    (
        Counted::UserSettings,
        "DELETE FROM events WHERE event_type = 'user_settings_updated'
             AND (user_id = {u} OR aggregate_id = {u})",
    ),
    (
        Counted::Events,
        "DELETE FROM events
         WHERE user_id = {u} OR aggregate_id = {u} OR aggregate_id IN ({of_user})",
    ),
    (
        Counted::Sagas,
        "DELETE FROM sagas WHERE user_id = {u} OR execution_id IN ({of_user})",
    ),
    (
        Counted::Uncounted,
        "DELETE FROM queue_entries WHERE user_id = {u} OR execution_id IN ({of_user})",
    ),
    (
        Counted::Uncounted,
        "DELETE FROM resource_allocations WHERE execution_id IN ({of_user})",
    ),
    (
        Counted::Executions,
        "DELETE FROM executions WHERE user_id = {u}",
    ),
    (
        Counted::Uncounted,
        "DELETE FROM notification_deliveries WHERE user_id = {u}",
    ),
    (
        Counted::Uncounted,
        "DELETE FROM notification_subscriptions WHERE user_id = {u}",
    ),
    (
        Counted::Notifications,
        "DELETE FROM notifications WHERE user_id = {u}",
    ),
    (
        Counted::SavedScripts,
        "DELETE FROM saved_scripts WHERE user_id = {u}",
    ),
    (
        Counted::Uncounted,
        "DELETE FROM user_rate_limits WHERE user_id = {u}",
    ),
    (
        Counted::UserSettings,
        "DELETE FROM user_settings_snapshots WHERE user_id = {u}",
    ),
];

/// The cascade's statements with `param` (the dialect's first positional parameter, reused
/// wherever the user id appears), each with the count it adds to.
pub(crate) fn statements(param: &str) -> Vec<(Counted, String)> {
    let of_user = OF_USER.replace("{u}", param);
    STEPS
        .iter()
        .map(|(counted, sql)| {
            let sql = sql.replace("{of_user}", &of_user).replace("{u}", param);
            (*counted, sql)
        })
        .collect()
}

/// Adds `n` deleted rows to the count they belong to.
pub(crate) fn add(counts: &mut UserDeletion, counted: Counted, n: u64) {
    let slot = match counted {
        Counted::Events => &mut counts.events,
        Counted::UserSettings => &mut counts.user_settings,
        Counted::Sagas => &mut counts.sagas,
        Counted::Executions => &mut counts.executions,
        Counted::SavedScripts => &mut counts.saved_scripts,
        Counted::Notifications => &mut counts.notifications,
        Counted::Uncounted => return,
    };
    *slot += n;
}
