//! Server-sent events of one execution, in the original's exact wire format: `data: <json>`
//! frames terminated by `\r\n\r\n`, and `: ping - <UTC time>` comments as heartbeats.
//!
//! The stream subscribes to its execution's events (through [`crate::streams`]) before it reads
//! the execution and backfills from the event store, so no event is lost in between. Event
//! frames carry the event's `seq` as their SSE `id`; a client reconnecting with
//! `Last-Event-ID` gets only what came after. When its buffer overflowed, or a heartbeat finds
//! the execution ended in the store without its last event having come, the stream catches up
//! from the store. It ends after the event that ends the pipeline, or at once (after the status
//! and the event that ended it) when the execution is already finished.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
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
use crate::streams::Subscription;

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

fn json(data: &impl Serialize) -> String {
    serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "sse: frame not serialisable");
        "null".to_owned()
    })
}

fn frame(data: &impl Serialize) -> Bytes {
    Bytes::from(format!("data: {}\r\n\r\n", json(data)))
}

/// A frame of a stored event: its `seq` is the SSE id a client resumes from.
fn frame_with_id(seq: i64, data: &impl Serialize) -> Bytes {
    Bytes::from(format!("id: {seq}\r\ndata: {}\r\n\r\n", json(data)))
}

fn ping() -> Bytes {
    let now = integr8s_core::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00");
    Bytes::from(format!(": ping - {now}\r\n\r\n"))
}

/// The `Last-Event-ID` a reconnecting client sends: the `seq` of the last event it received.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
}

/// The response carrying the frames `rx` gets.
pub(crate) fn stream_response(mut rx: mpsc::Receiver<Bytes>) -> Response {
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
    response
}

async fn execution_stream(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = state.streams.open(&user.user_id)?;
    let execution = load_owned(&state, &user, &execution_id).await?;
    // Routed from now on, before the backfill reads the store: nothing falls in between.
    let events = state
        .streams
        .execution(state.store.clone(), &state.bus, &execution.execution_id);
    let (tx, rx) = mpsc::channel::<Bytes>(state.streams.limits().buffer.max(1));
    let relay = Relay {
        state,
        id: execution.execution_id.clone(),
        tx,
        seen: HashSet::new(),
        after: last_event_id(&headers).unwrap_or(0),
    };
    tokio::spawn(async move {
        relay.run(execution, events).await;
        drop(permit);
    });
    Ok(stream_response(rx))
}

/// Relays one execution's events to one client.
struct Relay {
    state: AppState,
    id: String,
    tx: mpsc::Sender<Bytes>,
    /// Event ids already sent (or skipped), so an event from the bus, the store tail and a
    /// catch-up goes out once.
    seen: HashSet<String>,
    /// Events up to this `seq` were received before a reconnect (`Last-Event-ID`).
    after: i64,
}

/// Whether to go on after a frame: `Stop` once the pipeline ended or the client left.
#[derive(PartialEq)]
enum Flow {
    Go,
    Stop,
}

impl Relay {
    async fn send(&self, bytes: Bytes) -> Flow {
        if self.tx.send(bytes).await.is_ok() {
            Flow::Go
        } else {
            Flow::Stop
        }
    }

    /// Sends one event's frame unless it was sent before.
    async fn forward(&mut self, event: &StoredEvent) -> Flow {
        if event.seq <= self.after || !self.seen.insert(event.envelope.event_id.clone()) {
            return Flow::Go;
        }
        let env = &event.envelope;
        let event_type = env.event_type();
        let result = if event_type == EventType::ResultStored {
            match self.state.store.execution(&self.id).await {
                Ok(e) => e.as_ref().map(SseExecutionResult::of),
                Err(e) => {
                    tracing::warn!(error = %e, "sse: could not load the stored result");
                    None
                }
            }
        } else {
            None
        };
        let data = SseExecutionEvent::of(&self.id, event, result);
        let flow = self.send(frame_with_id(event.seq, &data)).await;
        tracing::trace!(%event_type, "sse frame");
        if event_type.ends_pipeline() {
            Flow::Stop
        } else {
            flow
        }
    }

    /// Sends every stored event of the execution not sent yet.
    async fn catch_up(&mut self) -> Flow {
        match self
            .state
            .store
            .events_for_aggregate(&self.id, &BRIDGED_TYPES, BACKFILL_LIMIT)
            .await
        {
            Ok(past) => {
                for event in past {
                    if self.forward(&event).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Flow::Go
            }
            Err(e) => {
                tracing::warn!(error = %e, execution_id = %self.id, "sse: catch-up failed");
                Flow::Go
            }
        }
    }

    /// The frame that ends the stream of an execution that ended: `result_stored` with the
    /// result, or for a cancel (which has no stored result) its `execution_cancelled`.
    async fn finish(&mut self, execution: &Execution) {
        let last = if execution.status == ExecutionStatus::Cancelled {
            EventType::ExecutionCancelled
        } else {
            EventType::ResultStored
        };
        let stored = self
            .state
            .store
            .events_for_aggregate(&self.id, &[last], 1)
            .await
            .ok()
            .and_then(|v| v.into_iter().next());
        let data = match (last, &stored) {
            (EventType::ResultStored, stored) => {
                SseExecutionEvent::stored_result(execution, stored.as_ref())
            }
            (_, Some(stored)) => SseExecutionEvent::of(&self.id, stored, None),
            (_, None) => return,
        };
        let bytes = match &stored {
            Some(s) => frame_with_id(s.seq, &data),
            None => frame(&data),
        };
        self.send(bytes).await;
    }

    /// On a heartbeat: when the store says the execution ended but its last event never came
    /// (lost by the bus, written by another process), catch up, and end the stream.
    async fn ended_in_store(&mut self) -> Flow {
        match self.state.store.execution(&self.id).await {
            Ok(Some(e)) if e.status.is_terminal() => {
                if self.catch_up().await == Flow::Go {
                    self.finish(&e).await;
                }
                Flow::Stop
            }
            Ok(Some(_)) => Flow::Go,
            Ok(None) => Flow::Stop,
            Err(e) => {
                tracing::warn!(error = %e, "sse: could not read the execution");
                Flow::Go
            }
        }
    }

    async fn run(mut self, execution: Execution, mut events: Subscription) {
        if self
            .send(frame(&SseExecutionEvent::status(&execution)))
            .await
            == Flow::Stop
        {
            return;
        }
        if execution.status.is_terminal() {
            // A client resuming with `Last-Event-ID` gets what it missed, up to the end.
            if self.after > 0 && self.catch_up().await == Flow::Stop {
                return;
            }
            self.finish(&execution).await;
            return;
        }
        if self.catch_up().await == Flow::Stop {
            return;
        }
        let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
        let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
        loop {
            let flow = tokio::select! {
                () = self.tx.closed() => Flow::Stop,
                _ = heartbeat.tick() => {
                    if self.send(ping()).await == Flow::Stop {
                        Flow::Stop
                    } else {
                        self.ended_in_store().await
                    }
                }
                next = events.next() => match next {
                    None => Flow::Stop,
                    Some(event) => {
                        let flow = self.forward(&event).await;
                        if flow == Flow::Go && events.take_lagged() {
                            self.catch_up().await
                        } else {
                            flow
                        }
                    }
                },
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }
}
