//! `GET /api/v1/admin/users/{user_id}/overview`: a user with the last 24 hours of its events,
//! its execution outcome counts, its rate-limit summary and its recent execution events.

use axum::extract::State;
use axum::Json;
use chrono::Duration;
use integr8s_core::event::EventType;
use integr8s_core::ports::admin::EventQuery;
use integr8s_core::ExecutionStatus;
use serde_json::{json, Value};

use super::events::stats_json;
use super::users::{load_user, user_response};
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::state::AppState;

/// Window of the overview's statistics and recent events.
const WINDOW_HOURS: i64 = 24;
const RECENT_EVENTS: u32 = 10;

fn execution_event_types() -> Vec<EventType> {
    EventType::ALL
        .iter()
        .copied()
        .filter(|t| t.as_str().starts_with("execution_"))
        .collect()
}

pub(super) async fn overview(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(user_id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let user = load_user(&state, &user_id).await?;
    let end = integr8s_core::now();
    let start = end - Duration::hours(WINDOW_HOURS);
    let stats = state.store.event_stats(start, Some(&user_id)).await?;
    let mut stats = stats_json(&stats);
    stats["start_time"] = json!(start);
    stats["end_time"] = json!(end);

    let by_status = state.store.execution_status_counts(&user_id).await?;
    let count = |s: ExecutionStatus| by_status.get(&s).copied().unwrap_or(0);
    let succeeded = count(ExecutionStatus::Completed);
    let failed = count(ExecutionStatus::Failed) + count(ExecutionStatus::Error);
    let timeout = count(ExecutionStatus::Timeout);
    let cancelled = count(ExecutionStatus::Cancelled);

    let recent = EventQuery {
        event_types: execution_event_types(),
        user_id: Some(user_id.clone()),
        start_time: Some(start),
        ..EventQuery::default()
    };
    let recent_events: Vec<_> = state
        .store
        .query_events(&recent, None, 0, RECENT_EVENTS)
        .await?
        .into_iter()
        .map(|e| e.envelope)
        .collect();

    let user = user_response(&state, user).await?;
    let rate_limit_summary = json!({
        "bypass_rate_limit": user.bypass_rate_limit,
        "global_multiplier": user.global_multiplier,
        "has_custom_limits": user.has_custom_limits,
    });
    Ok(Json(json!({
        "user": user,
        "stats": stats,
        "derived_counts": {
            "succeeded": succeeded,
            "failed": failed,
            "timeout": timeout,
            "cancelled": cancelled,
            "terminal_total": succeeded + failed + timeout + cancelled,
        },
        "rate_limit_summary": rate_limit_summary,
        "recent_events": recent_events,
    })))
}
