//! The `pod_*` events of a local run. The local sandbox has no Kubernetes pod: the events keep
//! the contract's names and shapes, and `pod_name` names the sandbox slot the run was placed in
//! (e.g. `sandbox-slot-3`), `namespace` is [`NAMESPACE`] and `node_name` is [`NODE_NAME`].
//! See docs/pipeline.md for when each is emitted.

use integr8s_core::event::{ContainerStatusInfo, EventPayload};
use integr8s_core::ports::RunOutcome;

/// The `namespace` of a local run's `pod_created`.
pub(crate) const NAMESPACE: &str = "local-sandbox";
/// The `node_name` of a local run: this host.
pub(crate) const NODE_NAME: &str = "local";
/// The name of the one "container" of a local run in `pod_running`.
const CONTAINER: &str = "script";

/// What the worker learnt of a run's progress.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    /// The sandbox slot, once the run was placed.
    pub place: Option<String>,
    /// The script was started.
    pub started: bool,
}

/// The run got its slot: `pod_created`, `pod_scheduled`, then `execution_started`.
pub(crate) fn placed(execution_id: &str, place: &str) -> Vec<EventPayload> {
    vec![
        EventPayload::PodCreated {
            execution_id: execution_id.to_owned(),
            pod_name: place.to_owned(),
            namespace: NAMESPACE.to_owned(),
        },
        EventPayload::PodScheduled {
            execution_id: execution_id.to_owned(),
            pod_name: place.to_owned(),
            node_name: NODE_NAME.to_owned(),
        },
        EventPayload::ExecutionStarted {
            execution_id: execution_id.to_owned(),
            pod_name: place.to_owned(),
            node_name: Some(NODE_NAME.to_owned()),
            container_id: None,
        },
    ]
}

/// The script started: `pod_running`, then `execution_running`.
pub(crate) fn started(execution_id: &str, place: &str) -> Vec<EventPayload> {
    vec![
        EventPayload::PodRunning {
            execution_id: execution_id.to_owned(),
            pod_name: place.to_owned(),
            container_statuses: vec![ContainerStatusInfo {
                name: CONTAINER.to_owned(),
                ready: true,
                restart_count: 0,
                state: "running".to_owned(),
            }],
        },
        EventPayload::ExecutionRunning {
            execution_id: execution_id.to_owned(),
            pod_name: place.to_owned(),
            progress_percentage: None,
        },
    ]
}

/// The events that follow a placed run's outcome event: how the "pod" ended
/// (`pod_succeeded` on exit 0, `pod_failed` on a non-zero exit, a signal or a limit,
/// `pod_terminated` when stopped by a timeout or a cancel), then `pod_deleted` (the sandbox was
/// cleaned up when the run returned). Output stays in the outcome event only.
pub(crate) fn ended(
    execution_id: &str,
    place: &str,
    outcome: RunOutcome,
    exit_code: i64,
) -> Vec<EventPayload> {
    let execution_id = execution_id.to_owned();
    let pod_name = place.to_owned();
    let failed = |reason: &str| EventPayload::PodFailed {
        execution_id: execution_id.clone(),
        pod_name: pod_name.clone(),
        exit_code,
        reason: Some(reason.to_owned()),
        message: None,
        stdout: None,
        stderr: None,
    };
    let terminated = |reason: &str| EventPayload::PodTerminated {
        execution_id: execution_id.clone(),
        pod_name: pod_name.clone(),
        exit_code,
        reason: Some(reason.to_owned()),
        message: None,
    };
    let end = match outcome {
        RunOutcome::Exited { code: 0 } => EventPayload::PodSucceeded {
            execution_id: execution_id.clone(),
            pod_name: pod_name.clone(),
            exit_code,
            stdout: None,
            stderr: None,
        },
        RunOutcome::Exited { .. } => failed("Error"),
        RunOutcome::Signaled { .. } => failed("Signaled"),
        RunOutcome::OutOfMemory => failed("OOMKilled"),
        RunOutcome::OutputLimit => failed("OutputLimitExceeded"),
        RunOutcome::CpuLimit => failed("CpuLimitExceeded"),
        RunOutcome::TimedOut => terminated("DeadlineExceeded"),
        RunOutcome::Cancelled => terminated("Cancelled"),
    };
    vec![
        end,
        EventPayload::PodDeleted {
            execution_id,
            pod_name,
            reason: Some("run ended; sandbox cleaned up".to_owned()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use integr8s_core::event::EventType;

    use super::*;

    fn types(events: &[EventPayload]) -> Vec<EventType> {
        events.iter().map(EventPayload::event_type).collect()
    }

    #[test]
    fn each_outcome_ends_the_pod_its_own_way() {
        let cases = [
            (RunOutcome::Exited { code: 0 }, EventType::PodSucceeded),
            (RunOutcome::Exited { code: 3 }, EventType::PodFailed),
            (RunOutcome::Signaled { signal: 9 }, EventType::PodFailed),
            (RunOutcome::OutOfMemory, EventType::PodFailed),
            (RunOutcome::OutputLimit, EventType::PodFailed),
            (RunOutcome::CpuLimit, EventType::PodFailed),
            (RunOutcome::TimedOut, EventType::PodTerminated),
            (RunOutcome::Cancelled, EventType::PodTerminated),
        ];
        for (outcome, first) in cases {
            let events = ended("e", "sandbox-slot-0", outcome, 1);
            assert_eq!(
                types(&events),
                [first, EventType::PodDeleted],
                "{outcome:?}"
            );
        }
        assert_eq!(
            types(&placed("e", "sandbox-slot-1")),
            [
                EventType::PodCreated,
                EventType::PodScheduled,
                EventType::ExecutionStarted
            ]
        );
        assert_eq!(
            types(&started("e", "sandbox-slot-1")),
            [EventType::PodRunning, EventType::ExecutionRunning]
        );
    }
}
