//! Sagas: read one, list by execution or overall (users see only their executions' sagas,
//! admins see all), and cancel.
//!
//! Cancelling a saga ends it as `cancelled` before the answer (so a read right after says so;
//! the store refuses to change a saga that ended meanwhile), emits `saga_cancelled`, and cancels
//! its execution as an execution cancel does (`integr8s_core::cancel`): the worker stops a live
//! run, and the result processor frees the slot and allocation.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::cancel::request_cancel;
use integr8s_core::event::Envelope;
use integr8s_core::ports::SagaFilter;
use integr8s_core::saga::{Saga, SagaState};
use integr8s_core::user::User;
use integr8s_core::StoreError;
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sagas", any(add_slash))
        .route("/api/v1/sagas/", get(list))
        .route("/api/v1/sagas/execution/{execution_id}", get(by_execution))
        .route("/api/v1/sagas/{saga_id}", get(read))
        .route("/api/v1/sagas/{saga_id}/cancel", post(cancel))
}

/// 307 to the same path with a trailing slash, keeping the query and the method.
async fn add_slash(OriginalUri(uri): OriginalUri) -> Redirect {
    let target = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    Redirect::temporary(&target)
}

/// The contract's `SagaStatusResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SagaStatusResponse {
    pub saga_id: String,
    pub saga_name: String,
    pub execution_id: String,
    pub state: SagaState,
    pub current_step: Option<String>,
    pub completed_steps: Vec<String>,
    pub compensated_steps: Vec<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub retry_count: i64,
}

impl From<Saga> for SagaStatusResponse {
    fn from(s: Saga) -> Self {
        Self {
            saga_id: s.saga_id,
            saga_name: s.saga_name,
            execution_id: s.execution_id,
            state: s.state,
            current_step: s.current_step,
            completed_steps: s.completed_steps,
            compensated_steps: s.compensated_steps,
            error_message: s.error_message,
            created_at: s.created_at,
            updated_at: s.updated_at,
            completed_at: s.completed_at,
            retry_count: s.retry_count,
        }
    }
}

/// The contract's `SagaListResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SagaListResponse {
    pub sagas: Vec<SagaStatusResponse>,
    pub total: u64,
    pub skip: u32,
    pub limit: u32,
    pub has_more: bool,
}

/// The contract's `SagaCancellationResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SagaCancellationResponse {
    pub success: bool,
    pub message: String,
    pub saga_id: String,
}

fn saga_not_found(saga_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "SagaNotFoundError",
        format!("Saga {saga_id} not found"),
    )
}

/// Whether `user` may see the execution: an admin, or its owner. A missing execution is
/// nobody's.
async fn can_access_execution(
    state: &AppState,
    user: &User,
    execution_id: &str,
) -> Result<bool, ApiError> {
    if user.is_admin() {
        return Ok(true);
    }
    let execution = state.store.execution(execution_id).await?;
    Ok(execution.is_some_and(|e| e.user_id == user.user_id))
}

/// The saga, if `user` may see it (404 missing, 403 another user's execution).
async fn load_saga(state: &AppState, user: &User, saga_id: &str) -> Result<Saga, ApiError> {
    let saga = state
        .store
        .saga(saga_id)
        .await?
        .ok_or_else(|| saga_not_found(saga_id))?;
    if !can_access_execution(state, user, &saga.execution_id).await? {
        return Err(ApiError::access_denied());
    }
    Ok(saga)
}

/// `state`, `limit` (1..=1000, 100) and `skip` of a saga listing.
fn list_params(query: &QueryPairs) -> Result<SagaFilter, ApiError> {
    let saga_state = match query.get("state").filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => Some(SagaState::parse(raw).ok_or_else(|| {
            ApiError::invalid(
                &["query", "state"],
                "enum",
                "Input should be 'created', 'running', 'compensating', 'completed', 'failed', 'timeout' or 'cancelled'",
            )
        })?),
    };
    let limit = query.int_in("limit", 100, 1, 1000)?;
    let skip = query.int_in("skip", 0, 0, i64::from(u32::MAX))?;
    Ok(SagaFilter {
        state: saga_state,
        limit: u32::try_from(limit).unwrap_or(1000),
        skip: u32::try_from(skip).unwrap_or(u32::MAX),
        ..SagaFilter::default()
    })
}

async fn list_response(
    state: &AppState,
    filter: &SagaFilter,
) -> Result<Json<SagaListResponse>, ApiError> {
    let (sagas, total) = state.store.list_sagas(filter).await?;
    let has_more = u64::from(filter.skip).saturating_add(sagas.len() as u64) < total;
    Ok(Json(SagaListResponse {
        sagas: sagas.into_iter().map(Into::into).collect(),
        total,
        skip: filter.skip,
        limit: filter.limit,
        has_more,
    }))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(saga_id): AppPath<String>,
) -> Result<Json<SagaStatusResponse>, ApiError> {
    Ok(Json(load_saga(&state, &user, &saga_id).await?.into()))
}

async fn by_execution(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
    query: QueryPairs,
) -> Result<Json<SagaListResponse>, ApiError> {
    let mut filter = list_params(&query)?;
    if !can_access_execution(&state, &user, &execution_id).await? {
        return Err(ApiError::access_denied());
    }
    filter.execution_id = Some(execution_id);
    list_response(&state, &filter).await
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: QueryPairs,
) -> Result<Json<SagaListResponse>, ApiError> {
    let mut filter = list_params(&query)?;
    if let Some(execution_id) = query.get("execution_id").filter(|v| !v.is_empty()) {
        if !can_access_execution(&state, &user, execution_id).await? {
            return Err(ApiError::access_denied());
        }
        filter.execution_id = Some(execution_id.to_owned());
    }
    if !user.is_admin() {
        filter.user_id = Some(user.user_id.clone());
    }
    list_response(&state, &filter).await
}

async fn cancel(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(saga_id): AppPath<String>,
) -> Result<Json<SagaCancellationResponse>, ApiError> {
    let saga = load_saga(&state, &user, &saga_id).await?;
    let execution_ended = state
        .store
        .execution(&saga.execution_id)
        .await?
        .is_none_or(|e| e.status.is_terminal());
    if saga.state.is_terminal() || execution_ended {
        return Err(not_active(&saga_id, saga.state.as_str()));
    }
    let reason = "Saga cancelled by user";
    let mut cancelled = saga.clone();
    let payload = cancelled.cancel(reason.to_owned(), user.user_id.clone());
    match state.store.save_saga(&cancelled).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(not_active(&saga_id, "ended")),
        Err(e) => return Err(e.into()),
    }
    let env = Envelope::new(payload, state.outbox.metadata(Some(user.user_id.clone())));
    state.outbox.emit_envelope(&env).await?;
    request_cancel(
        state.store.as_ref(),
        &state.outbox,
        &saga.execution_id,
        &user.user_id,
        reason,
    )
    .await?;
    tracing::info!(%saga_id, execution_id = %saga.execution_id, "saga cancellation requested");
    Ok(Json(SagaCancellationResponse {
        success: true,
        message: "Saga cancelled successfully".to_owned(),
        saga_id,
    }))
}

fn not_active(saga_id: &str, state: &str) -> ApiError {
    ApiError::domain(
        StatusCode::BAD_REQUEST,
        "SagaInvalidStateError",
        format!("Saga {saga_id} cannot be cancelled in state {state}"),
    )
}
