//! What a pod object says about its run: where it is scheduled, whether its container started,
//! and how it ended.

use integr8s_core::event::ContainerStatusInfo;
use integr8s_core::execution::RunLimits;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::manifest::{
    Origin, ANNOTATION_CORRELATION, ANNOTATION_LIMITS, ANNOTATION_SAGA, ANNOTATION_USER, CONTAINER,
    LABEL_EXECUTION,
};

/// Waiting reasons that mean the image will not come.
const IMAGE_PULL_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
];
/// Waiting reasons that mean the container cannot be created as specified.
const CONTAINER_CONFIG_FAILURES: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How a pod's run ended, as far as the pod object tells.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The container terminated with this exit code and reason (`Completed`, `Error`,
    /// `OOMKilled`…); `message` is its termination message.
    Exited {
        code: i32,
        reason: String,
        message: String,
    },
    /// `activeDeadlineSeconds` passed (pod reason `DeadlineExceeded`); `message` is the
    /// container's termination message when it got to write one.
    DeadlineExceeded { message: String },
    /// The kubelet evicted the pod (node pressure).
    Evicted { message: String },
    /// The image could not be pulled.
    ImagePull { reason: String, message: String },
    /// The container could not be created or started.
    ContainerConfig { reason: String, message: String },
    /// The pod failed without a container result (e.g. its node was lost).
    PodFailed { reason: String, message: String },
}

/// One observation of an executor pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub execution_id: String,
    pub pod_name: String,
    pub origin: Origin,
    pub limits: RunLimits,
    /// Set once the pod is scheduled.
    pub node: Option<String>,
    pub container_id: Option<String>,
    /// The container started (it runs or ran).
    pub started: bool,
    pub containers: Vec<ContainerStatusInfo>,
    pub ending: Option<Ending>,
}

impl PodView {
    /// Reads an executor pod; `None` for a pod without an execution label.
    pub fn of(pod: &Pod) -> Option<Self> {
        let execution_id = pod.labels().get(LABEL_EXECUTION)?.clone();
        let annotations = pod.annotations();
        let limits = annotations
            .get(ANNOTATION_LIMITS)
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let origin = Origin {
            user_id: annotations.get(ANNOTATION_USER).cloned(),
            correlation_id: annotations.get(ANNOTATION_CORRELATION).cloned(),
            saga_id: annotations
                .get(ANNOTATION_SAGA)
                .cloned()
                .unwrap_or_default(),
        };
        let status = pod.status.clone().unwrap_or_default();
        let scheduled = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True");
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|_| scheduled || status.phase.as_deref() != Some("Pending"));
        let container = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == CONTAINER)
            .cloned();
        let state = container.as_ref().and_then(|c| c.state.clone());
        let running = state.as_ref().and_then(|s| s.running.as_ref()).is_some();
        let terminated = state.as_ref().and_then(|s| s.terminated.clone());
        let waiting = state.as_ref().and_then(|s| s.waiting.clone());
        let started = running || terminated.as_ref().is_some_and(|t| t.started_at.is_some());
        let reason = status.reason.clone().unwrap_or_default();
        let pod_message = status.message.clone().unwrap_or_default();
        let termination_message = terminated
            .as_ref()
            .and_then(|t| t.message.clone())
            .unwrap_or_default();
        let phase = status.phase.as_deref().unwrap_or("Pending");
        // The kubelet may report the killed container before the pod's reason: a container
        // killed (SIGKILL or SIGTERM) once the deadline has passed was stopped by it.
        let deadline_passed = status
            .start_time
            .as_ref()
            .zip(pod.spec.as_ref().and_then(|s| s.active_deadline_seconds))
            .is_some_and(|(start, seconds)| {
                start.0.as_second().saturating_add(seconds) <= Timestamp::now().as_second()
            });
        let killed_at_deadline = deadline_passed
            && terminated.as_ref().is_some_and(|t| {
                matches!(t.exit_code, 137 | 143) && t.reason.as_deref() != Some("OOMKilled")
            });
        let ending = if reason == "DeadlineExceeded" || killed_at_deadline {
            Some(Ending::DeadlineExceeded {
                message: termination_message,
            })
        } else if reason == "Evicted" {
            Some(Ending::Evicted {
                message: pod_message,
            })
        } else if let Some(t) = terminated {
            Some(Ending::Exited {
                code: t.exit_code,
                reason: t.reason.unwrap_or_default(),
                message: termination_message,
            })
        } else if let Some(w) = waiting.filter(|w| {
            w.reason.as_deref().is_some_and(|r| {
                IMAGE_PULL_FAILURES.contains(&r) || CONTAINER_CONFIG_FAILURES.contains(&r)
            })
        }) {
            let reason = w.reason.unwrap_or_default();
            let message = w.message.unwrap_or_default();
            if IMAGE_PULL_FAILURES.contains(&reason.as_str()) {
                Some(Ending::ImagePull { reason, message })
            } else {
                Some(Ending::ContainerConfig { reason, message })
            }
        } else if phase == "Failed" {
            Some(Ending::PodFailed {
                reason: if reason.is_empty() {
                    "Failed".to_owned()
                } else {
                    reason
                },
                message: pod_message,
            })
        } else {
            None
        };
        Some(Self {
            execution_id,
            pod_name: pod.name_any(),
            origin,
            limits,
            node,
            container_id: container.as_ref().and_then(|c| c.container_id.clone()),
            started,
            containers: container.iter().map(container_info).collect(),
            ending,
        })
    }
}

fn container_info(status: &ContainerStatus) -> ContainerStatusInfo {
    let state = status.state.as_ref();
    let name = if state.and_then(|s| s.running.as_ref()).is_some() {
        "running"
    } else if state.and_then(|s| s.terminated.as_ref()).is_some() {
        "terminated"
    } else {
        "waiting"
    };
    ContainerStatusInfo {
        name: status.name.clone(),
        ready: status.ready,
        restart_count: i64::from(status.restart_count),
        state: name.to_owned(),
    }
}
