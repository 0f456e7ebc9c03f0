//! The notification stream: an `event: notification` frame per new in-app notification of the
//! signed-in user, `: ping` comments every 30 s, no initial frame.
//!
//! Each frame's SSE `id` is the `seq` of its `notification_created` event. The stream ends
//! cleanly after `streams.notification_lifetime_seconds`; the browser's `EventSource`
//! reconnects by itself and sends `Last-Event-ID`, and the new stream first sends what was
//! created after that id. A stream that fell behind catches up from the store the same way.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use integr8s_core::event::{EventPayload, EventType, StoredEvent};
use integr8s_core::notification::{Notification, NotificationChannel};
use serde_json::json;
use tokio::sync::mpsc;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::routes::sse::{last_event_id, stream_response};
use crate::state::AppState;
use crate::streams::Subscription;

/// Interval of the `: ping` comments on this stream.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// A notification's frame; `seq` (of its `notification_created` event) is the SSE id.
fn frame(seq: i64, n: &Notification) -> Bytes {
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
    Bytes::from(format!(
        "id: {seq}\r\nevent: notification\r\ndata: {data}\r\n\r\n"
    ))
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = state.streams.open(&user.user_id)?;
    let events = state
        .streams
        .notifications(state.store.clone(), &state.bus, &user.user_id);
    // Without `Last-Event-ID` the stream starts at the present.
    let resume = last_event_id(&headers);
    let after = match resume {
        Some(seq) => seq,
        None => state.store.last_seq().await?,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(state.streams.limits().buffer.max(1));
    let lifetime = state.streams.limits().notification_lifetime;
    let relay = Relay {
        state,
        user_id: user.user_id,
        tx,
        after,
        sent: VecDeque::new(),
    };
    tokio::spawn(async move {
        relay.run(events, resume.is_some(), lifetime).await;
        drop(permit);
    });
    Ok(stream_response(rx))
}

/// Notification ids remembered to drop duplicates (the bus, the store tail and catch-ups may
/// bring one event more than once).
const REMEMBERED: usize = 1024;

/// Most notifications sent by one catch-up.
const CATCH_UP_LIMIT: u32 = 500;

struct Relay {
    state: AppState,
    user_id: String,
    tx: mpsc::Sender<Bytes>,
    /// The highest `seq` of a `notification_created` sent (or the start).
    after: i64,
    sent: VecDeque<i64>,
}

impl Relay {
    /// Sends the notification of `event` if it is this user's, new, and still there; `false`
    /// when the client is gone.
    async fn forward(&mut self, event: &StoredEvent) -> bool {
        let Some(id) = inbox_notification(event, &self.user_id) else {
            return true;
        };
        if self.sent.contains(&event.seq) {
            return true;
        }
        let notification = match self.state.store.notification(id).await {
            Ok(Some(n)) => n,
            // Deleted before it could be shown.
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(error = %e, notification_id = id, "notification stream: loading failed");
                return true;
            }
        };
        if self.sent.len() >= REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(event.seq);
        self.after = self.after.max(event.seq);
        self.tx.send(frame(event.seq, &notification)).await.is_ok()
    }

    /// Sends this user's notifications created after the last one sent, from the store.
    async fn catch_up(&mut self) -> bool {
        let mut from = self.after;
        loop {
            let events = match self
                .state
                .store
                .events_after(&[EventType::NotificationCreated], from, CATCH_UP_LIMIT)
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "notification stream: catch-up failed");
                    return true;
                }
            };
            for event in &events {
                from = from.max(event.seq);
                if !self.forward(event).await {
                    return false;
                }
            }
            self.after = self.after.max(from);
            if events.len() < CATCH_UP_LIMIT as usize {
                return true;
            }
        }
    }

    async fn run(mut self, mut events: Subscription, resume: bool, lifetime: Duration) {
        if resume && !self.catch_up().await {
            return;
        }
        let end = tokio::time::Instant::now() + lifetime;
        let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
        let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
        loop {
            let go = tokio::select! {
                () = self.tx.closed() => false,
                () = tokio::time::sleep_until(end) => {
                    // A clean end: the client reconnects with the last id it got.
                    let _ = self.tx.send(closing(self.after)).await;
                    false
                }
                _ = heartbeat.tick() => self.tx.send(ping()).await.is_ok(),
                next = events.next() => match next {
                    None => false,
                    Some(event) => {
                        self.forward(&event).await
                            && (!events.take_lagged() || self.catch_up().await)
                    }
                },
            };
            if !go {
                return;
            }
        }
    }
}

/// The last frame of a stream that reached its lifetime: the position to resume from (an
/// `id:` without data still sets the client's last event id, also when nothing was sent),
/// a comment, then the end.
fn closing(after: i64) -> Bytes {
    Bytes::from(format!(
        "id: {after}\r\n: stream lifetime reached - reconnect with Last-Event-ID\r\n\r\n"
    ))
}
