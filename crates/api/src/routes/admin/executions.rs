//! `/api/v1/admin/executions/`: every user's executions, priority changes that reorder the
//! queue, and the queue's status.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{any, get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::execution::ExecutionFilter;
use integr8s_core::{ErrorType, Execution, ExecutionStatus, Priority};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::settings::{add_slash, effective_settings};
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath, QueryPairs};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/executions", any(add_slash))
        .route("/api/v1/admin/executions/", get(list))
        .route("/api/v1/admin/executions/queue", get(queue_status))
        .route(
            "/api/v1/admin/executions/{execution_id}/priority",
            put(set_priority),
        )
}

/// The contract's `AdminExecutionResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminExecutionResponse {
    pub execution_id: String,
    pub script: String,
    pub status: ExecutionStatus,
    pub lang: String,
    pub lang_version: String,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    pub priority: Priority,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The contract's `AdminExecutionListResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminExecutionListResponse {
    pub executions: Vec<AdminExecutionResponse>,
    pub total: u64,
    pub limit: i64,
    pub skip: i64,
    pub has_more: bool,
}

/// The contract's `PriorityUpdateRequest`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PriorityUpdateRequest {
    /// The new priority.
    pub priority: Priority,
}

/// The contract's `QueueStatusResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueueStatusResponse {
    /// Pending executions.
    pub queue_depth: u64,
    /// Executions holding a slot.
    pub active_count: u64,
    /// Executions allowed to hold a slot at once.
    pub max_concurrent: u32,
    /// Queued executions per priority (priorities without any are absent).
    pub by_priority: BTreeMap<String, u64>,
}

impl From<Execution> for AdminExecutionResponse {
    fn from(e: Execution) -> Self {
        let exit_code = e.reported_exit_code();
        Self {
            execution_id: e.execution_id,
            script: e.script,
            status: e.status,
            lang: e.lang,
            lang_version: e.lang_version,
            stdout: e.stdout,
            stderr: e.stderr,
            exit_code,
            error_type: e.error_type,
            priority: e.priority,
            user_id: Some(e.user_id),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

fn enum_param<T>(
    query: &QueryPairs,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|raw| {
            parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    &["query", name],
                    "enum",
                    format!("Input should be {expected}"),
                )
            })
        })
        .transpose()
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<AdminExecutionListResponse>, ApiError> {
    let status = enum_param(
        &query,
        "status",
        ExecutionStatus::parse,
        "'queued', 'scheduled', 'running', 'completed', 'failed', 'timeout', 'cancelled' or 'error'",
    )?;
    let priority = enum_param(
        &query,
        "priority",
        Priority::parse,
        "'critical', 'high', 'normal', 'low' or 'background'",
    )?;
    let limit = query.int_in("limit", 50, 1, 200)?;
    let skip = query.int_in("skip", 0, 0, i64::from(u32::MAX))?;
    let filter = ExecutionFilter {
        user_id: query
            .get("user_id")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        status,
        priority,
        limit: u32::try_from(limit).unwrap_or(50),
        skip: u32::try_from(skip).unwrap_or(0),
        ..ExecutionFilter::default()
    };
    let (executions, total) = state.store.list_executions(&filter).await?;
    let has_more = u64::try_from(skip)
        .unwrap_or(0)
        .saturating_add(executions.len() as u64)
        < total;
    let executions: Vec<AdminExecutionResponse> = executions.into_iter().map(Into::into).collect();
    Ok(Json(AdminExecutionListResponse {
        executions,
        total,
        limit,
        skip,
        has_more,
    }))
}

async fn set_priority(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(execution_id): AppPath<String>,
    AppJson(body): AppJson<PriorityUpdateRequest>,
) -> Result<Json<AdminExecutionResponse>, ApiError> {
    let execution = state
        .store
        .set_execution_priority(&execution_id, body.priority)
        .await?
        .ok_or_else(|| ApiError::execution_not_found(&execution_id))?;
    // Reorders a pending entry; an active or finished one keeps its slot (nothing to reorder).
    let requeued = state
        .store
        .set_priority(&execution_id, body.priority)
        .await?;
    tracing::info!(admin = %admin.username, %execution_id, priority = body.priority.as_str(), requeued, "execution priority changed");
    Ok(Json(execution.into()))
}

async fn queue_status(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<QueueStatusResponse>, ApiError> {
    let (pending, active) = state.store.queue_counts().await?;
    let mut by_priority = BTreeMap::new();
    for priority in Priority::ALL {
        let filter = ExecutionFilter {
            status: Some(ExecutionStatus::Queued),
            priority: Some(priority),
            limit: 1,
            ..ExecutionFilter::default()
        };
        let (_, waiting) = state.store.list_executions(&filter).await?;
        if waiting > 0 {
            by_priority.insert(priority.as_str().to_owned(), waiting);
        }
    }
    let max_concurrent = effective_settings(&state).await?.max_concurrent_executions;
    Ok(Json(QueueStatusResponse {
        queue_depth: pending,
        active_count: active,
        max_concurrent,
        by_priority,
    }))
}
