//! The notification stream: an `event: notification` frame per new in-app notification of the
//! signed-in user, `: ping` comments every 30 s, no initial frame.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use integr8s_core::event::{EventPayload, EventType, StoredEvent};
use integr8s_core::notification::{Notification, NotificationChannel};
use serde_json::json;
use tokio::sync::mpsc;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Interval of the `: ping` comments on this stream.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

fn frame(n: &Notification) -> Bytes {
    let data = json!({
        "notification_id": n.notification_id,
        "status": n.status,
        "subject": n.subject,
        "body": n.body,
        "action_url": n.action_url.clone().unwrap_or_default(),
        "created_at": n.created_at,
        "severity": n.severity,
        "tags": n.tags,
        "channel": NotificationChannel::InApp,
        "read_at": n.read_at,
    });
    Bytes::from(format!("event: notification\r\ndata: {data}\r\n\r\n"))
}

fn ping() -> Bytes {
    let now = integr8s_core::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00");
    Bytes::from(format!(": ping - {now}\r\n\r\n"))
}

/// The notification id of a `notification_created` for `user_id` that went to the inbox.
fn inbox_notification<'a>(event: &'a StoredEvent, user_id: &str) -> Option<&'a str> {
    match &event.envelope.payload {
        EventPayload::NotificationCreated {
            notification_id,
            user_id: owner,
            channels,
            ..
        } if owner == user_id && channels.contains(&NotificationChannel::InApp) => {
            Some(notification_id)
        }
        _ => None,
    }
}

pub(super) async fn notification_stream(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, ApiError> {
    let watch = state.bus.watch(&[EventType::NotificationCreated]).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(relay(state, user.user_id, watch, tx));
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

async fn relay(
    state: AppState,
    user_id: String,
    mut watch: BoxStream<'static, StoredEvent>,
    tx: mpsc::Sender<Bytes>,
) {
    let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
    let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
    loop {
        let bytes = tokio::select! {
            () = tx.closed() => return,
            _ = heartbeat.tick() => ping(),
            next = watch.next() => {
                let Some(event) = next else { return };
                let Some(id) = inbox_notification(&event, &user_id) else { continue };
                match state.store.notification(id).await {
                    Ok(Some(n)) => frame(&n),
                    // Deleted before it could be shown.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, notification_id = id, "notification stream: loading failed");
                        continue;
                    }
                }
            }
        };
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
}
