//! Replay sessions (admin): create, start, pause, resume, cancel, list, get, cleanup.
//!
//! Sessions are stored, so every API process sees them; the engine's replay runner executes the
//! running ones. A control that does not fit the session's state is a 400 (`InvalidStateError`),
//! never a 500.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::ports::replay::{
    ReplayConfig, ReplayFilter, ReplaySession, ReplayStatus, ReplayTarget, ReplayType,
};
use serde::Deserialize;

mod responses;

pub use responses::{
    CleanupResponse, ReplayResponse, ReplaySessionResponse, SessionConfigSummary, SessionSummary,
};

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/replay/sessions", post(create).get(list))
        .route("/api/v1/replay/sessions/{session_id}", get(session))
        .route("/api/v1/replay/sessions/{session_id}/start", post(start))
        .route("/api/v1/replay/sessions/{session_id}/pause", post(pause))
        .route("/api/v1/replay/sessions/{session_id}/resume", post(resume))
        .route("/api/v1/replay/sessions/{session_id}/cancel", post(cancel))
        .route("/api/v1/replay/cleanup", post(cleanup))
}

fn default_target() -> ReplayTarget {
    ReplayTarget::Kafka
}
fn default_speed() -> f64 {
    1.0
}
fn default_batch() -> i64 {
    100
}
fn default_true() -> bool {
    true
}
fn default_retry_attempts() -> i64 {
    3
}

/// The contract's `ReplayRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReplayRequest {
    replay_type: ReplayType,
    #[serde(default = "default_target")]
    target: ReplayTarget,
    #[serde(default)]
    filter: ReplayFilter,
    #[serde(default = "default_speed")]
    speed_multiplier: f64,
    #[serde(default)]
    preserve_timestamps: bool,
    #[serde(default = "default_batch")]
    batch_size: i64,
    #[serde(default)]
    max_events: Option<i64>,
    #[serde(default = "default_true")]
    skip_errors: bool,
    #[serde(default)]
    target_file_path: Option<String>,
    #[serde(default)]
    target_topics: Option<BTreeMap<String, String>>,
    #[serde(default)]
    retry_failed: bool,
    #[serde(default = "default_retry_attempts")]
    retry_attempts: i64,
    #[serde(default = "default_true")]
    enable_progress_tracking: bool,
}

fn range_issue(field: &str, value: f64, min: f64, max: Option<f64>) -> Option<ApiError> {
    if value < min {
        return Some(ApiError::invalid(
            &["body", field],
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
        ));
    }
    match max {
        Some(max) if value > max => Some(ApiError::invalid(
            &["body", field],
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
        )),
        _ => None,
    }
}

/// Whether a `file` target path stays inside the server's replay directory.
fn safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && std::path::Path::new(path).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

impl ReplayRequest {
    fn into_config(self) -> Result<ReplayConfig, ApiError> {
        let checks = [
            range_issue("speed_multiplier", self.speed_multiplier, 0.1, Some(100.0)),
            range_issue("batch_size", self.batch_size as f64, 1.0, Some(1000.0)),
            self.max_events
                .and_then(|m| range_issue("max_events", m as f64, 1.0, None)),
            range_issue(
                "retry_attempts",
                self.retry_attempts as f64,
                1.0,
                Some(10.0),
            ),
        ];
        if let Some(issue) = checks.into_iter().flatten().next() {
            return Err(issue);
        }
        if !self.speed_multiplier.is_finite() {
            return Err(ApiError::invalid(
                &["body", "speed_multiplier"],
                "finite_number",
                "Input should be a finite number",
            ));
        }
        if self.target == ReplayTarget::Callback {
            return Err(ApiError::invalid(
                &["body", "target"],
                "value_error",
                "Value error, unsupported target: callback",
            ));
        }
        if let Some(topics) = &self.target_topics {
            if let Some(unknown) = topics
                .keys()
                .find(|k| integr8s_core::event::EventType::parse(k).is_none())
            {
                return Err(ApiError::invalid(
                    &["body", "target_topics", unknown.as_str()],
                    "value_error",
                    format!("Value error, {unknown:?} is not an event type"),
                ));
            }
        }
        if let Some(path) = &self.target_file_path {
            if !safe_relative_path(path) {
                return Err(ApiError::invalid(
                    &["body", "target_file_path"],
                    "value_error",
                    "Value error, target_file_path must be a relative path inside the replay directory",
                ));
            }
        }
        Ok(ReplayConfig {
            replay_type: self.replay_type,
            target: self.target,
            filter: self.filter,
            speed_multiplier: self.speed_multiplier,
            preserve_timestamps: self.preserve_timestamps,
            batch_size: u32::try_from(self.batch_size).unwrap_or(100),
            max_events: self.max_events.and_then(|m| u64::try_from(m).ok()),
            target_topics: self.target_topics,
            target_file_path: self.target_file_path,
            skip_errors: self.skip_errors,
            retry_failed: self.retry_failed,
            retry_attempts: u32::try_from(self.retry_attempts).unwrap_or(3),
            enable_progress_tracking: self.enable_progress_tracking,
        })
    }
}

fn respond(session_id: &str, status: ReplayStatus, message: &str) -> Json<ReplayResponse> {
    Json(ReplayResponse {
        session_id: session_id.to_owned(),
        status,
        message: message.to_owned(),
    })
}

pub(crate) fn session_not_found(session_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "ReplaySessionNotFoundError",
        format!("Replay session {session_id} not found"),
    )
}

pub(crate) async fn load(state: &AppState, session_id: &str) -> Result<ReplaySession, ApiError> {
    state
        .store
        .replay_session(session_id)
        .await?
        .ok_or_else(|| session_not_found(session_id))
}

async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppJson(body): AppJson<ReplayRequest>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let config = body.into_config()?;
    let session = ReplaySession::new(config, Some(admin.user_id));
    state.store.create_replay_session(&session).await?;
    tracing::info!(session_id = %session.session_id, "replay session created");
    Ok(respond(
        &session.session_id,
        ReplayStatus::Created,
        "Replay session created successfully",
    ))
}

/// Counts the session's events and moves it from `created` to `running` (or straight to
/// `completed` when nothing matches). Returns the new status.
pub(crate) async fn start_session(
    state: &AppState,
    session: &ReplaySession,
) -> Result<ReplayStatus, ApiError> {
    let matching = state
        .store
        .count_replay_events(&session.config.filter)
        .await?;
    let total = session
        .config
        .max_events
        .map_or(matching, |max| matching.min(max));
    let to = if total == 0 {
        ReplayStatus::Completed
    } else {
        ReplayStatus::Running
    };
    let moved = state
        .store
        .transition_replay_session(
            &session.session_id,
            &[ReplayStatus::Created],
            to,
            Some(total),
            integr8s_core::now(),
        )
        .await?;
    if !moved {
        return Err(state_error(state, &session.session_id, "start").await);
    }
    Ok(to)
}

/// The 400 for a control that does not fit the session's current state.
async fn state_error(state: &AppState, session_id: &str, action: &str) -> ApiError {
    match state.store.replay_session(session_id).await {
        Ok(Some(s)) => ApiError::invalid_state(format!(
            "Cannot {action} replay session in {} state",
            s.status.as_str()
        )),
        Ok(None) => session_not_found(session_id),
        Err(e) => e.into(),
    }
}

async fn start(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let session = load(&state, &session_id).await?;
    if session.status != ReplayStatus::Created {
        return Err(state_error(&state, &session_id, "start").await);
    }
    let status = start_session(&state, &session).await?;
    let message = if status == ReplayStatus::Completed {
        "No events to replay"
    } else {
        "Replay session started"
    };
    Ok(respond(&session_id, status, message))
}

async fn control(
    state: &AppState,
    session_id: &str,
    action: &str,
    from: &[ReplayStatus],
    to: ReplayStatus,
    message: &str,
) -> Result<Json<ReplayResponse>, ApiError> {
    load(state, session_id).await?;
    let moved = state
        .store
        .transition_replay_session(session_id, from, to, None, integr8s_core::now())
        .await?;
    if !moved {
        return Err(state_error(state, session_id, action).await);
    }
    tracing::info!(session_id, status = to.as_str(), "replay session {action}");
    Ok(respond(session_id, to, message))
}

async fn pause(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let from = [ReplayStatus::Running];
    control(
        &state,
        &session_id,
        "pause",
        &from,
        ReplayStatus::Paused,
        "Replay session paused",
    )
    .await
}

async fn resume(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let from = [ReplayStatus::Paused];
    control(
        &state,
        &session_id,
        "resume",
        &from,
        ReplayStatus::Running,
        "Replay session resumed",
    )
    .await
}

async fn cancel(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let from = [
        ReplayStatus::Created,
        ReplayStatus::Scheduled,
        ReplayStatus::Running,
        ReplayStatus::Paused,
    ];
    control(
        &state,
        &session_id,
        "cancel",
        &from,
        ReplayStatus::Cancelled,
        "Replay session cancelled",
    )
    .await
}

pub(crate) fn parse_status(raw: Option<&str>) -> Result<Option<ReplayStatus>, ApiError> {
    raw.map(|s| {
        ReplayStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                &["query", "status"],
                "enum",
                "Input should be 'preview', 'scheduled', 'created', 'running', 'paused', 'completed', 'failed' or 'cancelled'",
            )
        })
    })
    .transpose()
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<Vec<SessionSummary>>, ApiError> {
    let status = parse_status(query.get("status"))?;
    let limit = query.int_in("limit", 100, 1, 1000)?;
    let sessions = state
        .store
        .list_replay_sessions(status, u32::try_from(limit).unwrap_or(100))
        .await?;
    Ok(Json(sessions.iter().map(Into::into).collect()))
}

async fn session(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Json<ReplaySessionResponse>, ApiError> {
    Ok(Json(load(&state, &session_id).await?.into()))
}

async fn cleanup(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<CleanupResponse>, ApiError> {
    let hours = query.int_in("older_than_hours", 24, 1, 24 * 365 * 100)?;
    let cutoff: DateTime<Utc> = integr8s_core::now() - chrono::Duration::hours(hours);
    let removed = state.store.delete_replay_sessions_before(cutoff).await?;
    Ok(Json(CleanupResponse {
        removed_sessions: removed,
        message: format!("Removed {removed} old sessions"),
    }))
}
