//! `GET /api/v1/admin/users/{user_id}/overview`: a user with the last 24 hours of its events,
//! its execution outcome counts, its rate-limit summary and its recent execution events.

use axum::extract::State;
use axum::Json;
use chrono::Duration;
use integr8s_core::event::EventType;
use integr8s_core::ports::admin::EventQuery;
use integr8s_core::{Envelope, ExecutionStatus};
use schemars::JsonSchema;
use serde::Serialize;

use super::events_schema::EventStatistics;
use super::users::{load_user, user_response};
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::routes::auth::UserResponse;
use crate::state::AppState;

/// Window of the overview's statistics and recent events.
const WINDOW_HOURS: i64 = 24;
const RECENT_EVENTS: u32 = 10;

/// The contract's `DerivedCounts`: the user's executions per outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DerivedCounts {
    pub succeeded: u64,
    pub failed: u64,
    pub timeout: u64,
    pub cancelled: u64,
    pub terminal_total: u64,
}

/// The contract's `RateLimitSummary`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RateLimitSummary {
    pub bypass_rate_limit: Option<bool>,
    pub global_multiplier: Option<f64>,
    pub has_custom_limits: Option<bool>,
}

/// The contract's `AdminUserOverview`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminUserOverview {
    pub user: UserResponse,
    pub stats: EventStatistics,
    pub derived_counts: DerivedCounts,
    pub rate_limit_summary: RateLimitSummary,
    pub recent_events: Vec<Envelope>,
}

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
) -> Result<Json<AdminUserOverview>, ApiError> {
    let user = load_user(&state, &user_id).await?;
    let end = integr8s_core::now();
    let start = end - Duration::hours(WINDOW_HOURS);
    let stats = state.store.event_stats(start, Some(&user_id)).await?;
    let stats = EventStatistics::new(&stats, start, end);

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
    let rate_limit_summary = RateLimitSummary {
        bypass_rate_limit: user.bypass_rate_limit,
        global_multiplier: user.global_multiplier,
        has_custom_limits: user.has_custom_limits,
    };
    Ok(Json(AdminUserOverview {
        user,
        stats,
        derived_counts: DerivedCounts {
            succeeded,
            failed,
            timeout,
            cancelled,
            terminal_total: succeeded + failed + timeout + cancelled,
        },
        rate_limit_summary,
        recent_events,
    }))
}
