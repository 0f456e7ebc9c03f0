//! Notification routes: the inbox (list, unread count, mark read, delete), per-channel
//! subscriptions, and the live stream (in [`stream`]).
//!
//! `unread_count` counts in-app notifications in the inbox that were not read yet (status
//! `delivered`); notifications filtered out by the in-app subscription (`skipped`) are listed
//! but never count as unread.

mod stream;
pub mod subscriptions;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::notification::{
    Notification, NotificationChannel, NotificationFilter, NotificationSeverity, NotificationStatus,
};
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/unread-count", get(unread_count))
        .route("/api/v1/notifications/mark-all-read", post(mark_all_read))
        .route(
            "/api/v1/notifications/{notification_id}/read",
            put(mark_read),
        )
        .route(
            "/api/v1/notifications/{notification_id}",
            axum::routing::delete(remove),
        )
        .route(
            "/api/v1/notifications/subscriptions",
            get(subscriptions::list),
        )
        .route(
            "/api/v1/notifications/subscriptions/{channel}",
            put(subscriptions::update),
        )
        .layer(axum::middleware::map_response(private_no_cache))
        .route(
            "/api/v1/events/notifications/stream",
            get(stream::notification_stream),
        )
}

/// Inbox answers are per user and change often.
async fn private_no_cache(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

/// The contract's `NotificationResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NotificationResponse {
    pub notification_id: String,
    pub channel: NotificationChannel,
    pub status: NotificationStatus,
    pub subject: String,
    pub body: String,
    pub action_url: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub severity: NotificationSeverity,
    pub tags: Vec<String>,
}

impl From<Notification> for NotificationResponse {
    fn from(n: Notification) -> Self {
        Self {
            notification_id: n.notification_id,
            channel: n.channel,
            status: n.status,
            subject: n.subject,
            body: n.body,
            action_url: n.action_url.unwrap_or_default(),
            created_at: n.created_at,
            read_at: n.read_at,
            severity: n.severity,
            tags: n.tags,
        }
    }
}

/// The contract's `NotificationListResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NotificationListResponse {
    pub notifications: Vec<NotificationResponse>,
    pub total: u64,
    pub unread_count: u64,
}

/// The contract's `UnreadCountResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UnreadCountResponse {
    pub unread_count: u64,
}

/// The contract's `DeleteNotificationResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeleteNotificationResponse {
    pub message: String,
}

fn not_found(notification_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "NotificationNotFoundError",
        format!("Notification {notification_id} not found"),
    )
}

/// `'a', 'b' or 'c'`, as pydantic lists enum members.
pub(crate) fn expected_one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn parse_status(raw: &str) -> Result<NotificationStatus, ApiError> {
    NotificationStatus::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = NotificationStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::invalid(
            &["query", "status"],
            "enum",
            format!("Input should be {}", expected_one_of(&names)),
        )
    })
}

fn tags(query: &QueryPairs, name: &str) -> Vec<String> {
    query
        .all(name)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: QueryPairs,
) -> Result<Json<NotificationListResponse>, ApiError> {
    let limit = query.int_in("limit", 50, 1, 100)?;
    let offset = query.int_in("offset", 0, 0, i64::from(u32::MAX))?;
    let filter = NotificationFilter {
        user_id: user.user_id.clone(),
        status: query.get("status").map(parse_status).transpose()?,
        include_tags: tags(&query, "include_tags"),
        exclude_tags: tags(&query, "exclude_tags"),
        tag_prefix: query
            .get("tag_prefix")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        limit: u32::try_from(limit).unwrap_or(50),
        offset: u32::try_from(offset).unwrap_or(0),
    };
    let (items, total) = state.store.list_notifications(&filter).await?;
    let unread = state.store.unread_notifications(&user.user_id).await?;
    Ok(Json(NotificationListResponse {
        notifications: items.into_iter().map(Into::into).collect(),
        total,
        unread_count: unread,
    }))
}

async fn unread_count(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<UnreadCountResponse>, ApiError> {
    let unread = state.store.unread_notifications(&user.user_id).await?;
    Ok(Json(UnreadCountResponse {
        unread_count: unread,
    }))
}

async fn mark_read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(notification_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let found = state
        .store
        .mark_notification_read(&user.user_id, &notification_id, integr8s_core::now())
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&notification_id))
    }
}

async fn mark_all_read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .mark_all_notifications_read(&user.user_id, integr8s_core::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(notification_id): AppPath<String>,
) -> Result<Json<DeleteNotificationResponse>, ApiError> {
    if state
        .store
        .delete_notification(&user.user_id, &notification_id)
        .await?
    {
        Ok(Json(DeleteNotificationResponse {
            message: "Notification deleted".to_owned(),
        }))
    } else {
        Err(not_found(&notification_id))
    }
}
