//! The `pod_*` and execution events of a pod, in the local worker's shapes (docs/pipeline.md,
//! "Pod events"): here `pod_name` is the real pod, `namespace` its namespace and `node_name`
//! the node it was scheduled on.

use integr8s_core::event::{ContainerStatusInfo, EventPayload};
use integr8s_core::ports::RunOutcome;

/// The pod exists: `pod_created` (emitted by the k8s worker).
pub fn created(execution_id: &str, pod_name: &str, namespace: &str) -> EventPayload {
    EventPayload::PodCreated {
        execution_id: execution_id.to_owned(),
        pod_name: pod_name.to_owned(),
        namespace: namespace.to_owned(),
    }
}

/// The pod was scheduled: `pod_scheduled`, then `execution_started`.
pub fn scheduled(
    execution_id: &str,
    pod_name: &str,
    node: &str,
    container_id: Option<String>,
) -> Vec<EventPayload> {
    vec![
        EventPayload::PodScheduled {
            execution_id: execution_id.to_owned(),
            pod_name: pod_name.to_owned(),
            node_name: node.to_owned(),
        },
        EventPayload::ExecutionStarted {
            execution_id: execution_id.to_owned(),
            pod_name: pod_name.to_owned(),
            node_name: Some(node.to_owned()),
            container_id,
        },
    ]
}

/// The container runs: `pod_running`, then `execution_running`.
pub fn running(
    execution_id: &str,
    pod_name: &str,
    containers: Vec<ContainerStatusInfo>,
) -> Vec<EventPayload> {
    vec![
        EventPayload::PodRunning {
            execution_id: execution_id.to_owned(),
            pod_name: pod_name.to_owned(),
            container_statuses: containers,
        },
        EventPayload::ExecutionRunning {
            execution_id: execution_id.to_owned(),
            pod_name: pod_name.to_owned(),
            progress_percentage: None,
        },
    ]
}

/// How the pod ended, after the outcome event: `pod_succeeded` on exit 0, `pod_failed` on a
/// non-zero exit, a signal or a limit, `pod_terminated` on a deadline or a cancel. `reason`
/// overrides the reason named after the outcome (e.g. `Evicted`, `ErrImagePull`).
pub fn ended(
    execution_id: &str,
    pod_name: &str,
    outcome: Option<RunOutcome>,
    exit_code: i64,
    reason: Option<&str>,
    message: Option<String>,
) -> EventPayload {
    let execution_id = execution_id.to_owned();
    let pod_name = pod_name.to_owned();
    let failed = |default: &str| EventPayload::PodFailed {
        execution_id: execution_id.clone(),
        pod_name: pod_name.clone(),
        exit_code,
        reason: Some(reason.unwrap_or(default).to_owned()),
        message: message.clone(),
        stdout: None,
        stderr: None,
    };
    let terminated = |default: &str| EventPayload::PodTerminated {
        execution_id: execution_id.clone(),
        pod_name: pod_name.clone(),
        exit_code,
        reason: Some(reason.unwrap_or(default).to_owned()),
        message: message.clone(),
    };
    match outcome {
        Some(RunOutcome::Exited { code: 0 }) => EventPayload::PodSucceeded {
            execution_id: execution_id.clone(),
            pod_name: pod_name.clone(),
            exit_code,
            stdout: None,
            stderr: None,
        },
        Some(RunOutcome::Exited { .. }) => failed("Error"),
        Some(RunOutcome::Signaled { .. }) => failed("Signaled"),
        Some(RunOutcome::OutOfMemory) => failed("OOMKilled"),
        Some(RunOutcome::OutputLimit) => failed("OutputLimitExceeded"),
        Some(RunOutcome::CpuLimit) => failed("CpuLimitExceeded"),
        Some(RunOutcome::TimedOut) => terminated("DeadlineExceeded"),
        Some(RunOutcome::Cancelled) => terminated("Cancelled"),
        None => failed("Failed"),
    }
}

/// The pod is gone: `pod_deleted`.
pub fn deleted(execution_id: &str, pod_name: &str, reason: &str) -> EventPayload {
    EventPayload::PodDeleted {
        execution_id: execution_id.to_owned(),
        pod_name: pod_name.to_owned(),
        reason: Some(reason.to_owned()),
    }
}
