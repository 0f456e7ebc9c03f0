//! Execution routes: submit, result, cancel, retry, events, the user's list, and admin delete.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::cancel::{request_cancel, CancelOutcome};
use integr8s_core::event::{Envelope, EventType};
use integr8s_core::execution::ExecutionFilter;
use integr8s_core::{ErrorType, Execution, ExecutionStatus, Priority, ResourceUsage};
use serde::{Deserialize, Serialize};

use super::submit::{self, load_owned, ExecutionResponse, RequestedLimits, Submission};
use super::wait;
use crate::auth::{AdminUser, CurrentUser};
use crate::error::ApiError;
use crate::extract::{AppBytes, AppJson, AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/execute", post(execute))
        .route("/api/v1/executions/{execution_id}/result", get(result))
        .route("/api/v1/executions/{execution_id}/cancel", post(cancel))
        .route("/api/v1/executions/{execution_id}/retry", post(retry))
        .route("/api/v1/executions/{execution_id}/events", get(events))
        .route("/api/v1/executions/{execution_id}", delete(remove))
        .route("/api/v1/user/executions", get(list))
}

/// The contract's `ExecutionResult`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExecutionResult {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub lang: String,
    pub lang_version: String,
    pub resource_usage: Option<ResourceUsage>,
    /// Null while the execution is active; once it ended, always a number: the script's own
    /// exit code, `128 + N` when killed by signal N or stopped at a memory, output or CPU
    /// limit (137), and -1 when it did not exit by itself (timeout, cancel, system error).
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    pub priority: Priority,
}

impl From<Execution> for ExecutionResult {
    fn from(e: Execution) -> Self {
        let exit_code = e.reported_exit_code();
        Self {
            execution_id: e.execution_id,
            status: e.status,
            stdout: e.stdout,
            stderr: e.stderr,
            lang: e.lang,
            lang_version: e.lang_version,
            resource_usage: e.resource_usage,
            exit_code,
            error_type: e.error_type,
            priority: e.priority,
        }
    }
}

fn default_lang() -> String {
    "python".to_owned()
}

fn default_version() -> String {
    "3.11".to_owned()
}

/// The contract's `ExecutionRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ExecutionRequest {
    script: String,
    #[serde(default = "default_lang")]
    lang: String,
    #[serde(default = "default_version")]
    lang_version: String,
    /// Wall-clock limit in seconds (integr8s extension; at most the admin cap).
    #[serde(default)]
    timeout_seconds: Option<i64>,
    /// Memory limit in MiB (integr8s extension; at most the admin cap).
    #[serde(default)]
    memory_mb: Option<i64>,
    /// CPU time budget over all processes, seconds (integr8s extension).
    #[serde(default)]
    cpu_time_seconds: Option<i64>,
    /// Combined stdout + stderr cap in bytes (integr8s extension).
    #[serde(default)]
    max_output_bytes: Option<i64>,
    /// Process and thread cap (integr8s extension).
    #[serde(default)]
    max_processes: Option<i64>,
    /// Standard input of the script (integr8s extension).
    #[serde(default)]
    stdin: Option<String>,
}

impl ExecutionRequest {
    /// The optional limits, each required to be a positive integer (422 naming the field).
    fn requested(&self) -> Result<RequestedLimits, ApiError> {
        fn positive(field: &str, v: Option<i64>) -> Result<Option<u64>, ApiError> {
            match v {
                None => Ok(None),
                Some(n) if n > 0 => Ok(Some(n.unsigned_abs())),
                Some(_) => Err(ApiError::invalid(
                    &["body", field],
                    "greater_than",
                    format!("{field} must be a positive integer"),
                )),
            }
        }
        Ok(RequestedLimits {
            clamp: false,
            timeout_seconds: positive("timeout_seconds", self.timeout_seconds)?,
            memory_mb: positive("memory_mb", self.memory_mb)?,
            cpu_time_seconds: positive("cpu_time_seconds", self.cpu_time_seconds)?,
            max_output_bytes: positive("max_output_bytes", self.max_output_bytes)?,
            max_processes: positive("max_processes", self.max_processes)?,
        })
    }
}

async fn execute(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    wait::Wait(wait): wait::Wait,
    AppJson(body): AppJson<ExecutionRequest>,
) -> Result<Response, ApiError> {
    let idempotency_key = submit::idempotency_key(&headers)?;
    let requested = body.requested()?;
    // A waiting request counts as an open stream; refused before anything is submitted.
    let permit = if wait {
        Some(state.streams.open(&user.user_id)?)
    } else {
        None
    };
    let response = submit::submit(
        &state,
        Submission {
            user_id: user.user_id,
            script: body.script,
            lang: body.lang,
            lang_version: body.lang_version,
            idempotency_key,
            requested,
            stdin: body.stdin,
        },
    )
    .await?;
    if permit.is_none() {
        return Ok(Json(response).into_response());
    }
    let execution = wait::until_ended(&state, &response.execution_id).await?;
    drop(permit);
    Ok(Json(ExecutionResult::from(execution)).into_response())
}

async fn result(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
) -> Result<Json<ExecutionResult>, ApiError> {
    let execution = load_owned(&state, &user, &execution_id).await?;
    Ok(Json(execution.into()))
}

fn default_reason() -> String {
    "User requested cancellation".to_owned()
}

/// The contract's `CancelExecutionRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct CancelExecutionRequest {
    #[serde(default = "default_reason")]
    reason: String,
}

/// The contract's `CancelStatus`.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelStatus {
    AlreadyCancelled,
    CancellationRequested,
}

/// The contract's `CancelResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CancelResponse {
    pub execution_id: String,
    pub status: CancelStatus,
    pub message: String,
    /// The event published for this cancel: the `execution_cancelled` of an execution that had
    /// not started, else the `delete_pod_command` that stops its run (whose
    /// `execution_cancelled` follows). None when it was already cancelled.
    pub event_id: Option<String>,
}

/// The contract's `DeleteResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeleteResponse {
    pub message: String,
    pub execution_id: String,
}

/// The contract's `ExecutionListResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExecutionListResponse {
    pub executions: Vec<ExecutionResult>,
    pub total: u64,
    pub limit: i64,
    pub skip: i64,
    pub has_more: bool,
}

async fn cancel(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> Result<Json<CancelResponse>, ApiError> {
    load_owned(&state, &user, &execution_id).await?;
    let request = crate::extract::optional_json_object::<CancelExecutionRequest>(&body)?;
    let outcome = request_cancel(
        state.store.as_ref(),
        &state.outbox,
        &execution_id,
        &user.user_id,
        &request.reason,
    )
    .await?;
    let event_id = match outcome {
        CancelOutcome::Cancelled { event_id } | CancelOutcome::Stopping { event_id } => event_id,
        CancelOutcome::AlreadyCancelled => {
            return Ok(Json(CancelResponse {
                execution_id,
                status: CancelStatus::AlreadyCancelled,
                message: "Execution is already cancelled".to_owned(),
                event_id: None,
            }))
        }
        CancelOutcome::Ended(status) => {
            return Err(ApiError::invalid_state(format!(
                "Cannot cancel execution in {} state",
                status.as_str()
            )))
        }
        CancelOutcome::NotFound => return Err(ApiError::execution_not_found(&execution_id)),
    };
    Ok(Json(CancelResponse {
        execution_id,
        status: CancelStatus::CancellationRequested,
        message: "Cancellation request submitted".to_owned(),
        event_id: Some(event_id),
    }))
}

async fn retry(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
) -> Result<Json<ExecutionResponse>, ApiError> {
    let original = load_owned(&state, &user, &execution_id).await?;
    if !original.status.is_terminal() {
        return Err(ApiError::invalid_state(format!(
            "Cannot retry execution in {} state",
            original.status.as_str()
        )));
    }
    let response = submit::submit(
        &state,
        Submission {
            user_id: user.user_id,
            script: original.script,
            lang: original.lang,
            lang_version: original.lang_version,
            idempotency_key: None,
            // The limits the original asked for, clamped to today's caps.
            requested: RequestedLimits::of(&original.limits),
            stdin: original.stdin,
        },
    )
    .await?;
    Ok(Json(response))
}

async fn events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(execution_id): AppPath<String>,
    query: QueryPairs,
) -> Result<Json<Vec<Envelope>>, ApiError> {
    let limit = query.int_in("limit", 100, 1, 1000)?;
    let mut types = Vec::new();
    for (i, name) in query.all("event_types").enumerate() {
        let t = EventType::parse(name).ok_or_else(|| {
            ApiError::Validation(vec![crate::error::ValidationIssue::new(
                &["query", "event_types"],
                "enum",
                format!("Input should be a valid event type, got '{name}'"),
            )
            .at(i)])
        })?;
        types.push(t);
    }
    load_owned(&state, &user, &execution_id).await?;
    let limit = u32::try_from(limit).unwrap_or(1000);
    let stored = state
        .store
        .events_for_aggregate(&execution_id, &types, limit)
        .await?;
    Ok(Json(stored.into_iter().map(|s| s.envelope).collect()))
}

fn parse_time(query: &QueryPairs, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = query.get(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| {
            ApiError::invalid(
                &["query", name],
                "datetime_from_date_parsing",
                "Input should be a valid datetime",
            )
        })?;
    Ok(Some(parsed))
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: QueryPairs,
) -> Result<Json<ExecutionListResponse>, ApiError> {
    let status = match query.get("status").filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => Some(ExecutionStatus::parse(raw).ok_or_else(|| {
            ApiError::invalid(
                &["query", "status"],
                "enum",
                "Input should be 'queued', 'scheduled', 'running', 'completed', 'failed', 'timeout', 'cancelled' or 'error'",
            )
        })?),
    };
    let limit = query.int_in("limit", 50, 1, 200)?;
    let skip = query.int_in("skip", 0, 0, i64::from(u32::MAX))?;
    let filter = ExecutionFilter {
        user_id: Some(user.user_id),
        status,
        priority: None,
        lang: query
            .get("lang")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        start_time: parse_time(&query, "start_time")?,
        end_time: parse_time(&query, "end_time")?,
        limit: u32::try_from(limit).unwrap_or(200),
        skip: u32::try_from(skip).unwrap_or(u32::MAX),
    };
    let (executions, total) = state.store.list_executions(&filter).await?;
    let has_more = (skip as u64).saturating_add(executions.len() as u64) < total;
    Ok(Json(ExecutionListResponse {
        executions: executions.into_iter().map(Into::into).collect(),
        total,
        limit,
        skip,
        has_more,
    }))
}

async fn remove(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(execution_id): AppPath<String>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let execution = state
        .store
        .execution(&execution_id)
        .await?
        .ok_or_else(|| ApiError::execution_not_found(&execution_id))?;
    if !execution.status.is_terminal() {
        request_cancel(
            state.store.as_ref(),
            &state.outbox,
            &execution_id,
            &admin.user_id,
            "Execution deleted by admin",
        )
        .await?;
    }
    if !state.store.delete_execution(&execution_id).await? {
        return Err(ApiError::execution_not_found(&execution_id));
    }
    Ok(Json(DeleteResponse {
        message: "Execution deleted successfully".to_owned(),
        execution_id,
    }))
}
