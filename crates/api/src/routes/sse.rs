//! Server-sent events of one execution, in the original's exact wire format: `data: <json>`
//! frames terminated by `\r\n\r\n`, and `: ping - <UTC time>` comments as heartbeats.
//!
//! The stream subscribes to the bus before reading the execution and backfills from the event
//! store, so no event is lost in between. It ends after the event that ends the pipeline, or at
//! once (after the status and the event that ended it) when the execution is already finished.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use integr8s_core::event::EventType;
use integr8s_core::{Execution, ExecutionStatus, StoredEvent};
use serde::Serialize;
use tokio::sync::mpsc;

use super::sse_frame::{SseExecutionEvent, SseExecutionResult};
use super::submit::load_owned;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::state::AppState;

/// Interval of the `: ping` comments.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Most past events replayed when a stream opens.
const BACKFILL_LIMIT: u32 = 1000;

/// The event types relayed to execution streams (the original's bridged set).
pub const BRIDGED_TYPES: [EventType; 17] = [
    EventType::ExecutionRequested,
    EventType::ExecutionQueued,
    EventType::ExecutionStarted,
    EventType::ExecutionRunning,
    EventType::ExecutionCompleted,
    EventType::ExecutionFailed,
    EventType::ExecutionTimeout,
    EventType::ExecutionCancelled,
    EventType::ResultStored,
    EventType::ResultFailed,
    EventType::PodCreated,
    EventType::PodScheduled,
    EventType::PodRunning,
    EventType::PodSucceeded,
    EventType::PodFailed,
    EventType::PodTerminated,
    EventType::PodDeleted,
];

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/events/executions/{execution_id}",
        get(execution_stream),
    )
}

fn frame(data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "sse: frame not serialisable");
        "null".to_owned()
    });
    Bytes::from(format!("data: {json}\r\n\r\n"))
}

fn ping() -> Bytes {
    let now = integr8s_core::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00");
    Bytes::from(format!(": ping - {now}\r\n\r\n"))
}

async fn execution_stream(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
) -> Result<Response, ApiError> {
    let watch = state.bus.watch(&BRIDGED_TYPES).await?;
    let execution = load_owned(&state, &user, &execution_id).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(relay(state, execution, watch, tx));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|next| next.map(Ok::<_, Infallible>))
    }));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
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

/// Whether the client is still there after sending.
async fn send(tx: &mpsc::Sender<Bytes>, bytes: Bytes) -> bool {
    tx.send(bytes).await.is_ok()
}

/// Sends one event's frame; returns `false` when the stream must end (pipeline over or client gone).
async fn forward(state: &AppState, tx: &mpsc::Sender<Bytes>, event: &StoredEvent) -> bool {
    let env = &event.envelope;
    let event_type = env.event_type();
    let result = if event_type == EventType::ResultStored {
        match state
            .store
            .execution(env.execution_id().unwrap_or_default())
            .await
        {
            Ok(e) => e.as_ref().map(SseExecutionResult::of),
            Err(e) => {
                tracing::warn!(error = %e, "sse: could not load the stored result");
                None
            }
        }
    } else {
        None
    };
    let execution_id = env
        .execution_id()
        .or(env.aggregate_id.as_deref())
        .unwrap_or_default();
    let data = SseExecutionEvent::of(execution_id, event, result);
    let sent = send(tx, frame(&data)).await;
    tracing::trace!(%event_type, sent, "sse frame");
    sent && !event_type.ends_pipeline()
}

fn belongs_to(event: &StoredEvent, execution_id: &str) -> bool {
    let env = &event.envelope;
    env.execution_id() == Some(execution_id) || env.aggregate_id.as_deref() == Some(execution_id)
}

async fn relay(
    state: AppState,
    execution: Execution,
    mut watch: BoxStream<'static, StoredEvent>,
    tx: mpsc::Sender<Bytes>,
) {
    let id = execution.execution_id.clone();
    if !send(&tx, frame(&SseExecutionEvent::status(&execution))).await {
        return;
    }
    if execution.status.is_terminal() {
        // The event that ended the pipeline: `result_stored` with the result, or for a cancel
        // (which has no stored result) its `execution_cancelled`.
        let last = if execution.status == ExecutionStatus::Cancelled {
            EventType::ExecutionCancelled
        } else {
            EventType::ResultStored
        };
        let stored = state
            .store
            .events_for_aggregate(&id, &[last], 1)
            .await
            .ok()
            .and_then(|v| v.into_iter().next());
        let data = match (last, stored) {
            (EventType::ResultStored, stored) => {
                SseExecutionEvent::stored_result(&execution, stored.as_ref())
            }
            (_, Some(stored)) => SseExecutionEvent::of(&id, &stored, None),
            (_, None) => return,
        };
        send(&tx, frame(&data)).await;
        return;
    }

    let mut seen = HashSet::new();
    match state
        .store
        .events_for_aggregate(&id, &BRIDGED_TYPES, BACKFILL_LIMIT)
        .await
    {
        Ok(past) => {
            for event in past {
                if seen.insert(event.envelope.event_id.clone())
                    && !forward(&state, &tx, &event).await
                {
                    return;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, execution_id = %id, "sse: backfill failed"),
    }

    let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
    let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = heartbeat.tick() => {
                if !send(&tx, ping()).await {
                    return;
                }
            }
            next = watch.next() => {
                let Some(event) = next else { return };
                if belongs_to(&event, &id)
                    && seen.insert(event.envelope.event_id.clone())
                    && !forward(&state, &tx, &event).await
                {
                    return;
                }
            }
        }
    }
}
