//! The events that end a pod's run: the outcome event in the local executor's shape (built by
//! the engine's own mapping from a run report), then how the pod ended.

use std::time::Duration;

use futures::AsyncReadExt;
use integr8s_core::event::{EventPayload, RunOutput};
use integr8s_core::execution::{ErrorType, NO_EXIT_CODE};
use integr8s_core::ports::{RunOutcome, RunReport};
use integr8s_engine::run_outcome::{exit_code_of, map_report, system_failure, CancelRequest};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::observe::{Ending, PodView};
use crate::error::is_not_found;
use crate::events;
use crate::manifest::CONTAINER;
use crate::report::{log_limit_bytes, parse_framed_log, parse_termination, CapturedOutput};

/// The outcome event and the pod's end event for a pod that ended.
pub(super) async fn ended(
    pods: &Api<Pod>,
    view: &PodView,
    ending: &Ending,
) -> Result<Vec<EventPayload>, kube::Error> {
    let id = view.execution_id.as_str();
    let pod = view.pod_name.as_str();
    let (code, reason, message, timed_out) = match ending {
        Ending::Exited {
            code,
            reason,
            message,
        } => (*code, reason.as_str(), message.as_str(), false),
        Ending::DeadlineExceeded { message } => (NO_EXIT_CODE as i32, "", message.as_str(), true),
        Ending::Evicted { message } => {
            let payload = EventPayload::ExecutionFailed {
                execution_id: id.to_owned(),
                exit_code: NO_EXIT_CODE,
                error_type: ErrorType::ResourceLimit,
                error_message: Some(format!("the pod was evicted by its node: {message}")),
                output: RunOutput::default(),
            };
            let end = events::ended(
                id,
                pod,
                None,
                NO_EXIT_CODE,
                Some("Evicted"),
                Some(message.clone()),
            );
            return Ok(vec![payload, end]);
        }
        Ending::ImagePull { reason, message } => {
            let text = format!("the run's image could not be pulled ({reason}): {message}");
            return Ok(failure(id, pod, reason, message, text));
        }
        Ending::ContainerConfig { reason, message } => {
            let text = format!("the run's container could not be started ({reason}): {message}");
            return Ok(failure(id, pod, reason, message, text));
        }
        Ending::PodFailed { reason, message } => {
            let text = format!("the pod failed without a result ({reason}): {message}");
            return Ok(failure(id, pod, reason, message, text));
        }
    };
    let cap = view.limits.max_output_bytes;
    let output = if view.started {
        read_output(pods, pod, cap).await?
    } else {
        None
    };
    let output = output.unwrap_or_default();
    let termination = parse_termination(message);
    let outcome = if timed_out {
        RunOutcome::TimedOut
    } else if reason == "OOMKilled" {
        RunOutcome::OutOfMemory
    } else if output.truncated {
        RunOutcome::OutputLimit
    } else {
        RunOutcome::Exited {
            code: termination.exit_code.unwrap_or(code),
        }
    };
    let report = RunReport {
        outcome,
        stdout: output.stdout,
        stderr: output.stderr,
        output_truncated: output.truncated,
        wall_time: termination.wall_time.unwrap_or(Duration::ZERO),
        cpu_user: termination.cpu_time.unwrap_or(Duration::ZERO),
        cpu_system: Duration::ZERO,
        peak_memory_bytes: termination.peak_memory_bytes.unwrap_or(0),
        pids_limit_hit: false,
    };
    let event = map_report(id, &report, &view.limits, None, view.started);
    let end = events::ended(id, pod, Some(outcome), exit_code_of(outcome), None, None);
    Ok(vec![event, end])
}

/// The events of a pod deleted before its run was reported: a cancel when one was asked for,
/// else a system failure.
pub(super) fn deleted_early(
    execution_id: &str,
    pod: &str,
    cancel: Option<CancelRequest>,
    started: bool,
) -> Vec<EventPayload> {
    match cancel {
        Some(cancel) => {
            let report = RunReport {
                outcome: RunOutcome::Cancelled,
                stdout: String::new(),
                stderr: String::new(),
                output_truncated: false,
                wall_time: Duration::ZERO,
                cpu_user: Duration::ZERO,
                cpu_system: Duration::ZERO,
                peak_memory_bytes: 0,
                pids_limit_hit: false,
            };
            let limits = Default::default();
            vec![
                map_report(execution_id, &report, &limits, Some(&cancel), started),
                events::ended(execution_id, pod, Some(RunOutcome::Cancelled), NO_EXIT_CODE, None, None),
            ]
        }
        None => vec![
            system_failure(
                execution_id,
                "the executor pod was deleted before its run was reported (deleted outside integr8s)"
                    .to_owned(),
            ),
            events::ended(execution_id, pod, None, NO_EXIT_CODE, Some("Deleted"), None),
        ],
    }
}

fn failure(id: &str, pod: &str, reason: &str, message: &str, text: String) -> Vec<EventPayload> {
    vec![
        system_failure(id, text),
        events::ended(
            id,
            pod,
            None,
            NO_EXIT_CODE,
            Some(reason),
            Some(message.to_owned()),
        ),
    ]
}

/// The container's framed output, at most what the frames of `cap` bytes each take; `None`
/// when the pod is gone or its log is not framed.
async fn read_output(
    pods: &Api<Pod>,
    pod: &str,
    cap: u64,
) -> Result<Option<CapturedOutput>, kube::Error> {
    let limit = log_limit_bytes(cap);
    let params = LogParams {
        container: Some(CONTAINER.to_owned()),
        limit_bytes: Some(limit),
        ..LogParams::default()
    };
    let stream = match pods.log_stream(pod, &params).await {
        Ok(stream) => stream,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut log = Vec::new();
    let read = stream
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut log)
        .await;
    if let Err(e) = read {
        tracing::warn!(pod, error = %e, "reading the pod's log failed");
        return Ok(None);
    }
    Ok(parse_framed_log(&log, cap))
}
