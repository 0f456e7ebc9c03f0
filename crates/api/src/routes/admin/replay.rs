//! Admin replay by filter (dry-run preview or a real replay session) and the SSE stream of a
//! session's progress.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use integr8s_core::event::EventType;
use integr8s_core::ports::replay::{
    ReplayConfig, ReplayFilter, ReplaySession, ReplayStatus, ReplayTarget, ReplayType,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath};
use crate::routes::replay::{load, start_session};
use crate::state::AppState;

/// Most events one admin replay may send.
const MAX_REPLAY_EVENTS: u64 = 1000;
/// Events shown by a dry run.
const PREVIEW_LIMIT: u32 = 100;
/// How often the status stream looks at the session.
const STATUS_POLL: Duration = Duration::from_millis(500);
/// Interval of the `: ping` comments.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/events/replay", post(replay))
        .route(
            "/api/v1/admin/events/replay/{session_id}/status",
            get(status_stream),
        )
}

fn default_dry_run() -> bool {
    true
}

/// The contract's `EventReplayRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EventReplayRequest {
    #[serde(default)]
    event_ids: Option<Vec<String>>,
    #[serde(default)]
    aggregate_id: Option<String>,
    #[serde(default)]
    start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    target_service: Option<String>,
    #[serde(default = "default_dry_run")]
    dry_run: bool,
}

/// The contract's `EventSummary`: one event of a dry-run preview.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EventSummary {
    pub event_id: String,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub aggregate_id: Option<String>,
}

/// The contract's `EventReplayResponse`: a preview (`dry_run`) or the scheduled session.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EventReplayResponse {
    pub dry_run: bool,
    pub total_events: u64,
    pub replay_id: String,
    pub session_id: Option<String>,
    pub status: ReplayStatus,
    pub events_preview: Option<Vec<EventSummary>>,
}

fn unprocessable(detail: impl Into<String>) -> ApiError {
    ApiError::domain(StatusCode::UNPROCESSABLE_ENTITY, "ValidationError", detail)
}

/// Where a real replay sends its events, by `target_service`: by default (and as `bus` or
/// `kafka`) the event bus, each copy marked as a replay; `file` writes a JSON-lines file in the
/// replay directory; `test` reads the events without sending them anywhere. Anything else is
/// refused with 422.
fn replay_target(target_service: Option<&str>) -> Result<ReplayTarget, ApiError> {
    match target_service
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "bus" | "kafka") => Ok(ReplayTarget::Kafka),
        Some("file") => Ok(ReplayTarget::File),
        Some("test") => Ok(ReplayTarget::Test),
        Some(_) => Err(ApiError::invalid(
            &["body", "target_service"],
            "value_error",
            "Value error, target_service must be one of: bus, kafka, file, test",
        )),
    }
}

fn replay_id() -> String {
    format!("replay-{}", integr8s_core::new_id().replace('-', ""))
}

async fn replay(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppJson(body): AppJson<EventReplayRequest>,
) -> Result<Json<EventReplayResponse>, ApiError> {
    let filter = ReplayFilter {
        event_ids: body.event_ids.filter(|ids| !ids.is_empty()),
        aggregate_id: body.aggregate_id,
        start_time: body.start_time,
        end_time: body.end_time,
        ..ReplayFilter::default()
    };
    if filter.is_empty() {
        return Err(unprocessable("Must specify at least one filter for replay"));
    }
    let total = state.store.count_replay_events(&filter).await?;
    if total == 0 {
        return Err(ApiError::domain(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            "No events found matching the criteria",
        ));
    }
    let replay_id = replay_id();
    if body.dry_run {
        let preview = state
            .store
            .replay_events(&filter, None, PREVIEW_LIMIT)
            .await?;
        let preview = preview
            .into_iter()
            .map(|e| EventSummary {
                event_type: e.envelope.event_type(),
                event_id: e.envelope.event_id,
                timestamp: e.envelope.timestamp,
                aggregate_id: e.envelope.aggregate_id,
            })
            .collect();
        return Ok(Json(EventReplayResponse {
            dry_run: true,
            total_events: total,
            replay_id,
            session_id: None,
            status: ReplayStatus::Preview,
            events_preview: Some(preview),
        }));
    }
    if total > MAX_REPLAY_EVENTS {
        return Err(unprocessable(format!(
            "Too many events to replay ({total}). Maximum is {MAX_REPLAY_EVENTS}."
        )));
    }
    let target = replay_target(body.target_service.as_deref())?;
    let config = ReplayConfig {
        replay_type: ReplayType::Query,
        target,
        filter,
        speed_multiplier: 1.0,
        preserve_timestamps: false,
        batch_size: 100,
        max_events: Some(MAX_REPLAY_EVENTS),
        target_topics: None,
        target_file_path: None,
        skip_errors: true,
        retry_failed: false,
        retry_attempts: 3,
        enable_progress_tracking: true,
    };
    let mut session = ReplaySession::new(config, Some(admin.user_id));
    session.replay_id = replay_id.clone();
    state.store.create_replay_session(&session).await?;
    let status = start_session(&state, &session).await?;
    tracing::info!(session_id = %session.session_id, total, ?target, ?status, "admin replay started");
    Ok(Json(EventReplayResponse {
        dry_run: false,
        total_events: total,
        replay_id,
        session_id: Some(session.session_id),
        status,
        events_preview: None,
    }))
}

/// The contract's `EventReplayStatusResponse` for one session.
fn status_json(s: &ReplaySession) -> Value {
    let processed = s.processed_events();
    let progress = if s.total_events == 0 {
        if s.status == ReplayStatus::Completed {
            100.0
        } else {
            0.0
        }
    } else {
        (processed as f64 / s.total_events as f64 * 100.0).min(100.0)
    };
    let estimated_completion = match (s.status, s.started_at) {
        (ReplayStatus::Running, Some(started)) if processed > 0 && s.total_events > processed => {
            let elapsed = integr8s_core::now() - started;
            let per_event = elapsed / i32::try_from(processed).unwrap_or(i32::MAX);
            let left = i32::try_from(s.total_events - processed).unwrap_or(i32::MAX);
            Some(integr8s_core::now() + per_event * left)
        }
        _ => None,
    };
    json!({
        "session_id": s.session_id,
        "status": s.status,
        "total_events": s.total_events,
        "replayed_events": s.replayed_events,
        "failed_events": s.failed_events,
        "skipped_events": s.skipped_events,
        "replay_id": s.replay_id,
        "created_at": s.created_at,
        "started_at": s.started_at,
        "completed_at": s.completed_at,
        "errors": s.errors,
        "estimated_completion": estimated_completion,
        "execution_results": null,
        "progress_percentage": progress,
    })
}

fn frame(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

fn ping() -> Bytes {
    let now = integr8s_core::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00");
    Bytes::from(format!(": ping - {now}\r\n\r\n"))
}

async fn status_stream(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(session_id): AppPath<String>,
) -> Result<Response, ApiError> {
    let session = load(&state, &session_id).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(relay(state, session, tx));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|next| next.map(Ok::<_, Infallible>))
    }));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The fields whose change is worth a frame (not the moving estimate).
fn progress_key(s: &ReplaySession) -> (ReplayStatus, u64, u64, u64, u64, usize) {
    (
        s.status,
        s.total_events,
        s.replayed_events,
        s.failed_events,
        s.skipped_events,
        s.errors.len(),
    )
}

/// First frame: the current state; then a frame per change; ends after a terminal status.
async fn relay(state: AppState, first: ReplaySession, tx: mpsc::Sender<Bytes>) {
    if tx.send(frame(&status_json(&first))).await.is_err() || first.status.is_terminal() {
        return;
    }
    let mut last = progress_key(&first);
    let mut poll = tokio::time::interval(STATUS_POLL);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if tx.send(ping()).await.is_err() {
                    return;
                }
            }
            _ = poll.tick() => {
                let session = match state.store.replay_session(&first.session_id).await {
                    Ok(Some(s)) => s,
                    // Deleted by a cleanup: nothing more will happen.
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "replay status stream: could not read the session");
                        continue;
                    }
                };
                let key = progress_key(&session);
                if key == last {
                    continue;
                }
                last = key;
                if tx.send(frame(&status_json(&session))).await.is_err()
                    || session.status.is_terminal()
                {
                    return;
                }
            }
        }
    }
}
