//! The frames of an execution's SSE stream (the contract's `SSEExecutionEventSchema`): every
//! key is always present, `null` when it does not apply.

use chrono::{DateTime, Utc};
use integr8s_core::event::{EventType, StoredEvent};
use integr8s_core::{ErrorType, Execution, ExecutionStatus, ResourceUsage};
use serde::Serialize;
use serde_json::Value;

/// One `data:` frame of `GET /api/v1/events/executions/{execution_id}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SseExecutionEvent {
    /// The event's type, or `status` for the first frame (built from the stored execution).
    pub event_type: String,
    pub execution_id: String,
    pub timestamp: Option<DateTime<Utc>>,
    /// Null for the `status` frame.
    pub event_id: Option<String>,
    /// The stored status; only in the `status` frame.
    pub status: Option<ExecutionStatus>,
    /// The stored result; only in `result_stored` frames.
    pub result: Option<SseExecutionResult>,
}

/// The result carried by a `result_stored` frame (the original's shape: with `created_at` and
/// `metadata`, without `priority`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SseExecutionResult {
    pub execution_id: String,
    pub status: ExecutionStatus,
    /// Never null: the script's own exit code, `128 + N` when killed by signal N or stopped at
    /// a memory, output or CPU limit (137), and -1 when it did not exit by itself (timeout,
    /// cancel, system error).
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    pub lang: String,
    pub lang_version: String,
    pub resource_usage: Option<ResourceUsage>,
    pub created_at: DateTime<Utc>,
    /// Always null.
    pub metadata: Option<Value>,
    pub error_type: Option<ErrorType>,
}

impl SseExecutionResult {
    pub fn of(e: &Execution) -> Self {
        Self {
            execution_id: e.execution_id.clone(),
            status: e.status,
            exit_code: e
                .reported_exit_code()
                .unwrap_or(integr8s_core::execution::NO_EXIT_CODE),
            stdout: e.stdout.clone().unwrap_or_default(),
            stderr: e.stderr.clone().unwrap_or_default(),
            lang: e.lang.clone(),
            lang_version: e.lang_version.clone(),
            resource_usage: e.resource_usage,
            created_at: e.created_at,
            metadata: None,
            error_type: e.error_type,
        }
    }
}

impl SseExecutionEvent {
    /// The first frame: the stored status.
    pub fn status(e: &Execution) -> Self {
        Self {
            event_type: "status".to_owned(),
            execution_id: e.execution_id.clone(),
            timestamp: Some(e.updated_at),
            event_id: None,
            status: Some(e.status),
            result: None,
        }
    }

    /// The frame of a stored event of execution `execution_id`.
    pub fn of(execution_id: &str, event: &StoredEvent, result: Option<SseExecutionResult>) -> Self {
        let env = &event.envelope;
        Self {
            event_type: env.event_type().as_str().to_owned(),
            execution_id: execution_id.to_owned(),
            timestamp: Some(env.timestamp),
            event_id: Some(env.event_id.clone()),
            status: None,
            result,
        }
    }

    /// A `result_stored` frame for an execution that ended before the stream opened.
    pub fn stored_result(e: &Execution, stored: Option<&StoredEvent>) -> Self {
        Self {
            event_type: EventType::ResultStored.as_str().to_owned(),
            execution_id: e.execution_id.clone(),
            timestamp: Some(stored.map_or(e.updated_at, |s| s.envelope.timestamp)),
            event_id: stored.map(|s| s.envelope.event_id.clone()),
            status: None,
            result: Some(SseExecutionResult::of(e)),
        }
    }
}
