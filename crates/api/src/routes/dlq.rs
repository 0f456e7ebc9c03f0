//! The dead-letter queue admin API (`/api/v1/dlq/…`, admin only): list, inspect, retry, discard
//! and stats. A retry asks the message's consumer group to handle the event again (the group's
//! consumer loop picks it up); both actions are announced as `dlq_message_*` events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use integr8s_core::event::{Envelope, EventPayload, EventType};
use integr8s_core::ports::dlq::{DlqFilter, DlqMessage, DlqStatus};

mod responses;

pub use responses::{
    DlqDiscardRequest, DlqDiscardResponse, DlqEventTypeCount, DlqGroupCount,
    DlqMessageListResponse, DlqMessageResponse, DlqRetryResponse, DlqStatsResponse,
};

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{AppBytes, AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/dlq/messages", get(list))
        .route("/api/v1/dlq/messages/{message_id}", get(message))
        .route("/api/v1/dlq/messages/{message_id}/retry", post(retry))
        .route("/api/v1/dlq/messages/{message_id}/discard", post(discard))
        .route("/api/v1/dlq/stats", get(stats))
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
) -> Result<Json<DlqMessageListResponse>, ApiError> {
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
    Ok(Json(DlqMessageListResponse {
        messages: messages.iter().map(Into::into).collect(),
        total,
        limit,
        offset,
    }))
}

async fn message(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(message_id): AppPath<String>,
) -> Result<Json<DlqMessageResponse>, ApiError> {
    Ok(Json((&load(&state, &message_id).await?).into()))
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
) -> Result<Json<DlqRetryResponse>, ApiError> {
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
    Ok(Json(DlqRetryResponse {
        message: format!("Redelivery to consumer group '{}' requested", message.group),
        message_id,
        status: message.status,
        retry_count: message.retry_count,
    }))
}

async fn discard(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(message_id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> Result<Json<DlqDiscardResponse>, ApiError> {
    let request = crate::extract::optional_json_object::<DlqDiscardRequest>(&body)?;
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
    Ok(Json(DlqDiscardResponse {
        message_id,
        status: message.status,
        reason,
        message: "DLQ message discarded".to_owned(),
    }))
}

async fn stats(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<DlqStatsResponse>, ApiError> {
    let stats = state.store.dlq_stats().await?;
    Ok(Json(DlqStatsResponse::new(stats, integr8s_core::now())))
}
