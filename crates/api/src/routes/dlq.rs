//! The dead-letter queue admin API (`/api/v1/dlq/…`, admin only): list, inspect, retry, discard
//! and stats. A retry asks the message's consumer group to handle the event again (the group's
//! consumer loop picks it up); both actions are announced as `dlq_message_*` events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use integr8s_core::event::{Envelope, EventPayload, EventType};
use integr8s_core::ports::dlq::{DlqFilter, DlqMessage, DlqStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{deserialize_value, AppBytes, AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/dlq/messages", get(list))
        .route("/api/v1/dlq/messages/{message_id}", get(message))
        .route("/api/v1/dlq/messages/{message_id}/retry", post(retry))
        .route("/api/v1/dlq/messages/{message_id}/discard", post(discard))
        .route("/api/v1/dlq/stats", get(stats))
}

/// One DLQ message as the API shows it (`DLQMessage`).
pub fn message_json(m: &DlqMessage) -> Value {
    json!({
        "message_id": m.message_id,
        "group": m.group,
        "event_id": m.event.envelope.event_id,
        "event_type": m.event_type(),
        "original_topic": m.original_topic,
        "error": m.error,
        "attempts": m.attempts,
        "retry_count": m.retry_count,
        "status": m.status,
        "producer_id": m.producer_id,
        "failed_at": m.failed_at,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "next_retry_at": m.next_retry_at,
        "last_retried_at": m.last_retried_at,
        "redelivered_at": m.redelivered_at,
        "discarded_at": m.discarded_at,
        "discard_reason": m.discard_reason,
        "event": m.event.envelope,
    })
}

fn not_found(message_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "DLQMessageNotFoundError",
        format!("DLQ message {message_id} not found"),
    )
}

async fn load(state: &AppState, message_id: &str) -> Result<DlqMessage, ApiError> {
    state
        .store
        .dlq_message(message_id)
        .await?
        .ok_or_else(|| not_found(message_id))
}

fn enum_issue(field: &str, allowed: &str) -> ApiError {
    ApiError::invalid(
        &["query", field],
        "enum",
        format!("Input should be {allowed}"),
    )
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let status = query
        .get("status")
        .map(|s| {
            DlqStatus::parse(s).ok_or_else(|| {
                enum_issue("status", "'pending', 'scheduled', 'retried' or 'discarded'")
            })
        })
        .transpose()?;
    let event_type = query
        .get("event_type")
        .map(|s| EventType::parse(s).ok_or_else(|| enum_issue("event_type", "a known event type")))
        .transpose()?;
    let limit = query.int_in("limit", 50, 1, 1000)?;
    let offset = query.int_in("offset", 0, 0, i64::from(u32::MAX))?;
    let filter = DlqFilter {
        status,
        event_type,
        group: query.get("group").map(str::to_owned),
        limit: u32::try_from(limit).unwrap_or(50),
        offset: u32::try_from(offset).unwrap_or(0),
    };
    let (messages, total) = state.store.list_dlq_messages(&filter).await?;
    Ok(Json(json!({
        "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

async fn message(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(message_id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(message_json(&load(&state, &message_id).await?)))
}

/// Announces a DLQ change on behalf of the admin, keyed by the message id.
async fn announce(
    state: &AppState,
    message: &DlqMessage,
    payload: EventPayload,
    admin_id: &str,
) -> Result<(), ApiError> {
    let env = Envelope::new(payload, state.outbox.metadata(Some(admin_id.to_owned())))
        .with_aggregate(message.message_id.clone());
    state.outbox.emit_envelope(&env).await?;
    Ok(())
}

fn already_settled(m: &DlqMessage, action: &str) -> ApiError {
    ApiError::invalid_state(format!(
        "Cannot {action} a DLQ message in {} state",
        m.status.as_str()
    ))
}

async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(message_id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let current = load(&state, &message_id).await?;
    let Some(message) = state
        .store
        .retry_dlq_message(&message_id, integr8s_core::now())
        .await?
    else {
        return Err(already_settled(
            &load(&state, &message_id).await.unwrap_or(current),
            "retry",
        ));
    };
    announce(&state, &message, message.retried_payload(), &admin.user_id).await?;
    tracing::info!(message_id, group = %message.group, "dlq message retried by an admin");
    Ok(Json(json!({
        "message_id": message_id,
        "status": message.status,
        "retry_count": message.retry_count,
        "message": format!("Redelivery to consumer group '{}' requested", message.group),
    })))
}

/// The optional body of a discard.
#[derive(Debug, Deserialize, Default)]
struct DiscardRequest {
    #[serde(default)]
    reason: Option<String>,
}

fn parse_discard(body: &Bytes) -> Result<DiscardRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DiscardRequest::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(&["body"], "json_invalid", format!("JSON decode error: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            &["body"],
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        ));
    }
    deserialize_value(value)
}

async fn discard(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(message_id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> Result<Json<Value>, ApiError> {
    let request = parse_discard(&body)?;
    let current = load(&state, &message_id).await?;
    let reason = request
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| format!("Discarded by admin {}", admin.username));
    let Some(message) = state
        .store
        .discard_dlq_message(&message_id, &reason, integr8s_core::now())
        .await?
    else {
        return Err(already_settled(
            &load(&state, &message_id).await.unwrap_or(current),
            "discard",
        ));
    };
    announce(
        &state,
        &message,
        message.discarded_payload(&reason),
        &admin.user_id,
    )
    .await?;
    Ok(Json(json!({
        "message_id": message_id,
        "status": message.status,
        "reason": reason,
        "message": "DLQ message discarded",
    })))
}

async fn stats(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<Value>, ApiError> {
    let s = state.store.dlq_stats().await?;
    let by_status: serde_json::Map<String, Value> = s
        .by_status
        .iter()
        .map(|(status, n)| (status.as_str().to_owned(), json!(n)))
        .collect();
    let oldest_age = s
        .oldest_open_at
        .map(|t| (integr8s_core::now() - t).num_milliseconds() as f64 / 1000.0);
    Ok(Json(json!({
        "total": s.total,
        "by_status": by_status,
        "by_event_type": s.by_event_type.iter()
            .map(|(t, n)| json!({"event_type": t, "count": n})).collect::<Vec<_>>(),
        "by_group": s.by_group.iter()
            .map(|(g, n)| json!({"group": g, "count": n})).collect::<Vec<_>>(),
        "oldest_open_at": s.oldest_open_at,
        "oldest_open_age_seconds": oldest_age,
    })))
}
