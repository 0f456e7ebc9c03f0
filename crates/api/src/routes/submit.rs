//! Submitting an execution: runtime resolution, back-pressure and the atomic store + outbox write.

use integr8s_core::event::{Envelope, EventPayload, RunRequest};
use integr8s_core::execution::ExecutionFilter;
use integr8s_core::ports::CreateExecution;
use integr8s_core::runtime::RuntimeError;
use integr8s_core::{Execution, ExecutionStatus, Priority, RunLimits};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest accepted script, in characters.
pub use integr8s_core::effective_settings::MAX_SCRIPT_CHARS;
/// Longest accepted `Idempotency-Key` header.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Seconds a client is asked to wait when the queue is full.
const QUEUE_FULL_RETRY_AFTER_SECS: u64 = 5;

/// What to run, already shaped by the request body.
pub struct Submission {
    pub user_id: String,
    pub script: String,
    pub lang: String,
    pub lang_version: String,
    pub idempotency_key: Option<String>,
    /// Limits the request asked for; each may only lower the admin cap.
    pub requested: RequestedLimits,
    pub stdin: Option<String>,
}

/// Optional per-request limits (integr8s extension of `ExecutionRequest`), already checked to
/// be positive by the request parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedLimits {
    /// Lower values above a cap to the cap instead of refusing them (retries).
    pub clamp: bool,
    pub timeout_seconds: Option<u64>,
    pub memory_mb: Option<u64>,
    pub cpu_time_seconds: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub max_processes: Option<u64>,
}

impl RequestedLimits {
    /// The requested limits of a stored execution, for a retry.
    pub fn of(limits: &RunLimits) -> Self {
        Self {
            clamp: true,
            timeout_seconds: Some(limits.timeout_seconds),
            memory_mb: Some(limits.memory_bytes >> 20),
            cpu_time_seconds: limits.cpu_time_ms.map(|ms| ms.div_ceil(1000)),
            max_output_bytes: Some(limits.max_output_bytes),
            max_processes: Some(limits.max_processes),
        }
    }
}

/// Applies requested limits under the caps (the effective defaults). A value above its cap is
/// a 422 naming the field and the cap.
fn apply_requested(
    caps: RunLimits,
    max_cpu_time_seconds: u64,
    req: RequestedLimits,
) -> Result<RunLimits, ApiError> {
    let clamp = req.clamp;
    let capped = |field: &str, value: Option<u64>, cap: u64, unit: &str| -> Result<u64, ApiError> {
        match value {
            None => Ok(cap),
            Some(v) if v <= cap => Ok(v),
            Some(_) if clamp => Ok(cap),
            Some(v) => Err(ApiError::invalid(
                &["body", field],
                "less_than_equal",
                format!("{field} is {v}{unit}, above the administrator's cap of {cap}{unit}"),
            )),
        }
    };
    let memory_cap_mb = caps.memory_bytes >> 20;
    let cpu = match req.cpu_time_seconds {
        None => None,
        Some(v) => Some(capped("cpu_time_seconds", Some(v), max_cpu_time_seconds, " s")? * 1000),
    };
    Ok(RunLimits {
        timeout_seconds: capped(
            "timeout_seconds",
            req.timeout_seconds,
            caps.timeout_seconds,
            " s",
        )?,
        memory_bytes: capped("memory_mb", req.memory_mb, memory_cap_mb, " MiB")?
            .saturating_mul(1 << 20)
            .min(caps.memory_bytes),
        max_processes: capped("max_processes", req.max_processes, caps.max_processes, "")?,
        max_output_bytes: capped(
            "max_output_bytes",
            req.max_output_bytes,
            caps.max_output_bytes,
            " bytes",
        )?,
        cpu_time_ms: cpu,
    })
}

/// The contract's `ExecutionResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExecutionResponse {
    pub execution_id: String,
    pub status: ExecutionStatus,
}

fn runtime_error(e: RuntimeError) -> ApiError {
    let field = match e {
        RuntimeError::UnknownLanguage { .. } => "lang",
        _ => "lang_version",
    };
    ApiError::invalid(&["body", field], "value_error", e.to_string())
}

/// Validates, stores the execution with its `execution_requested` event, and publishes it.
/// A resubmission under the same idempotency key answers the existing execution.
pub async fn submit(state: &AppState, sub: Submission) -> Result<ExecutionResponse, ApiError> {
    if sub.script.chars().count() > MAX_SCRIPT_CHARS {
        return Err(ApiError::invalid(
            &["body", "script"],
            "string_too_long",
            format!("String should have at most {MAX_SCRIPT_CHARS} characters"),
        ));
    }
    // What the live workers can run; a miss is checked once more against a fresh read, so a
    // worker that just started is not refused by a cached answer.
    let runtime = match state
        .workers
        .runtimes(state, false)
        .await?
        .resolve(&sub.lang, &sub.lang_version)
    {
        Ok(runtime) => runtime,
        Err(_) => state
            .workers
            .runtimes(state, true)
            .await?
            .resolve(&sub.lang, &sub.lang_version)
            .map_err(runtime_error)?,
    };

    // Count queued executions rather than queue entries: the coordinator enqueues after the
    // request event, so entries lag behind submissions.
    let waiting = ExecutionFilter {
        status: Some(ExecutionStatus::Queued),
        limit: 1,
        ..ExecutionFilter::default()
    };
    let (_, pending) = state.store.list_executions(&waiting).await?;
    // The user's own cap first: one user's backlog must not fill the queue for everyone. The
    // user's count can reach the cap only when the whole queue holds that many.
    let max_own = state.config.quotas.max_pending_per_user;
    if pending >= max_own {
        let own = ExecutionFilter {
            user_id: Some(sub.user_id.clone()),
            ..waiting.clone()
        };
        let (_, own_pending) = state.store.list_executions(&own).await?;
        if own_pending >= max_own {
            return Err(crate::quotas::pending_exceeded(max_own));
        }
    }
    if pending >= state.config.max_queue_length {
        return Err(ApiError::TooManyRequests {
            kind: "QueueFullError",
            detail: "Execution queue is full, retry later".to_owned(),
            retry_after_secs: QUEUE_FULL_RETRY_AFTER_SECS,
        });
    }

    let now = integr8s_core::now();
    let cfg = &state.config;
    let settings = crate::routes::admin::settings::effective_settings(state).await?;
    let caps = crate::routes::admin::settings::run_limits(cfg, &settings);
    let limits = apply_requested(caps, cfg.max_cpu_time_seconds, sub.requested)?;
    if let Some(stdin) = &sub.stdin {
        if stdin.len() > cfg.max_stdin_bytes {
            return Err(ApiError::invalid(
                &["body", "stdin"],
                "string_too_long",
                format!(
                    "stdin is {} bytes, above the cap of {} bytes",
                    stdin.len(),
                    cfg.max_stdin_bytes
                ),
            ));
        }
    }
    let execution = Execution {
        execution_id: integr8s_core::new_id(),
        user_id: sub.user_id.clone(),
        script: sub.script,
        lang: runtime.lang.clone(),
        lang_version: runtime.version.clone(),
        status: ExecutionStatus::Queued,
        priority: Priority::Normal,
        limits,
        stdout: None,
        stderr: None,
        exit_code: None,
        error_type: None,
        error_message: None,
        resource_usage: None,
        idempotency_key: sub.idempotency_key,
        stdin: sub.stdin,
        created_at: now,
        updated_at: now,
    };
    let request = RunRequest {
        execution_id: execution.execution_id.clone(),
        script: execution.script.clone(),
        language: runtime.lang,
        language_version: runtime.version,
        runtime_image: runtime.image,
        runtime_command: runtime.command,
        runtime_filename: runtime.file_name,
        timeout_seconds: limits.timeout_seconds,
        cpu_limit: settings.cpu_limit.clone(),
        memory_limit: settings.memory_limit.clone(),
        cpu_request: cfg.cpu_request.clone(),
        memory_request: cfg.memory_request.clone(),
        priority: execution.priority,
        limits,
        stdin: execution.stdin.clone(),
    };
    let envelope = Envelope::new(
        EventPayload::ExecutionRequested(request),
        state.outbox.metadata(Some(sub.user_id)),
    )
    .with_correlation(Some(integr8s_core::new_id()));

    match state.store.create_execution(&execution, &envelope).await? {
        CreateExecution::Created(stored, event) => {
            state.outbox.publish_stored(&event).await;
            tracing::info!(execution_id = %stored.execution_id, lang = %stored.lang, "execution submitted");
            Ok(ExecutionResponse {
                execution_id: stored.execution_id,
                status: stored.status,
            })
        }
        CreateExecution::Existing(existing) => {
            integr8s_telemetry::metrics::counter!(
                integr8s_telemetry::catalogue::IDEMPOTENCY_DUPLICATES_BLOCKED_TOTAL
            )
            .increment(1);
            Ok(ExecutionResponse {
                execution_id: existing.execution_id,
                status: existing.status,
            })
        }
    }
}

/// The `Idempotency-Key` header, trimmed; empty means none.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .map_err(|_| {
            ApiError::invalid(
                &["header", "Idempotency-Key"],
                "string_type",
                "Input should be a valid string",
            )
        })?
        .trim();
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(ApiError::invalid(
            &["header", "Idempotency-Key"],
            "string_too_long",
            format!("String should have at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        ));
    }
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

/// Maps a missing or foreign execution to the contract's 404/403.
pub async fn load_owned(
    state: &AppState,
    user: &integr8s_core::user::User,
    execution_id: &str,
) -> Result<Execution, ApiError> {
    let execution = state
        .store
        .execution(execution_id)
        .await?
        .ok_or_else(|| ApiError::execution_not_found(execution_id))?;
    if execution.user_id != user.user_id && !user.is_admin() {
        return Err(ApiError::access_denied());
    }
    Ok(execution)
}
