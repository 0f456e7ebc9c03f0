//! The simulated node: schedules each new pod, "pulls" its image, mounts its ConfigMap, runs
//! its container's command through the executor (the local sandbox in tests) with the pod's
//! limits, and reports what happened in the pod's status, as a kubelet would. The container's
//! log and termination message are what the real entrypoint prints for the same run
//! ([`crate::report`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use integr8s_core::execution::RunLimits;
use integr8s_core::ports::{Executor, RunControl, RunOutcome, RunReport, RunSpec};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::objects::Key;
use super::{Cluster, KubeletCommand, PodFault};
use crate::manifest::{
    CONTAINER, ENV_MAX_OUTPUT, ENV_SCRIPT_FILE, LABEL_LANGUAGE, STDIN_KEY, TMP_MOUNT,
};
use crate::quantity::parse_bytes;
use crate::report::{frame_output, termination_message, Termination};

/// How long a pod waits for its ConfigMap before the container is reported as not creatable.
const MOUNT_WAIT: Duration = Duration::from_secs(10);
const HOST_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub(super) async fn run(
    cluster: Arc<Cluster>,
    executor: Arc<dyn Executor>,
    node: String,
    mut commands: mpsc::UnboundedReceiver<KubeletCommand>,
    shutdown: CancellationToken,
) {
    let tasks = TaskTracker::new();
    loop {
        let command = tokio::select! {
            () = shutdown.cancelled() => break,
            command = commands.recv() => command,
        };
        let Some(KubeletCommand::Start(ns, name)) = command else {
            break;
        };
        let key = (ns, name);
        let cancel = CancellationToken::new();
        cluster.runs_lock().insert(key.clone(), cancel.clone());
        let pod = PodRun {
            cluster: cluster.clone(),
            executor: executor.clone(),
            node: node.clone(),
            key,
            cancel,
        };
        tasks.spawn(pod.run());
    }
    tasks.close();
    tasks.wait().await;
}

struct PodRun {
    cluster: Arc<Cluster>,
    executor: Arc<dyn Executor>,
    node: String,
    key: Key,
    cancel: CancellationToken,
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn condition(type_: &str, status: bool) -> PodCondition {
    PodCondition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        last_transition_time: Some(now()),
        ..PodCondition::default()
    }
}

fn container_status(
    image: &str,
    state: ContainerState,
    ready: bool,
    id: Option<String>,
) -> ContainerStatus {
    ContainerStatus {
        name: CONTAINER.to_owned(),
        image: image.to_owned(),
        image_id: format!("fake://{image}"),
        ready,
        restart_count: 0,
        started: Some(state.running.is_some()),
        container_id: id,
        state: Some(state),
        ..ContainerStatus::default()
    }
}

impl PodRun {
    /// Changes the pod's status (a `MODIFIED` event); `None` when the pod is gone.
    fn update(&self, change: impl FnOnce(&mut Pod)) -> Option<Pod> {
        let mut objects = self.cluster.lock();
        let mut pod = objects.pods.get(&self.key)?.clone();
        change(&mut pod);
        Some(objects.put_pod(pod, "MODIFIED"))
    }

    async fn run(self) {
        self.steps().await;
        self.cluster.runs_lock().remove(&self.key);
    }

    async fn steps(&self) {
        let node = self.node.clone();
        let Some(pod) = self.update(|pod| {
            if let Some(spec) = pod.spec.as_mut() {
                spec.node_name = Some(node);
            }
            let status = pod.status.get_or_insert_with(Default::default);
            status.conditions = Some(vec![condition("PodScheduled", true)]);
            status.start_time = Some(now());
            status.host_ip = Some("10.0.0.1".to_owned());
        }) else {
            return;
        };
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let fault = self.cluster.next_pod_fault();
        if fault == Some(PodFault::ImagePull) {
            for reason in ["ErrImagePull", "ImagePullBackOff"] {
                let message = format!("failed to pull image \"{image}\": not found");
                let waiting = ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.to_owned()),
                        message: Some(message),
                    }),
                    ..ContainerState::default()
                };
                let status = container_status(&image, waiting, false, None);
                if self
                    .update(|pod| set_container(pod, status, "Pending"))
                    .is_none()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            return;
        }
        let spec = match self.run_spec(&pod).await {
            Ok(spec) => spec,
            Err(message) => {
                let waiting = ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CreateContainerConfigError".to_owned()),
                        message: Some(message),
                    }),
                    ..ContainerState::default()
                };
                let status = container_status(&image, waiting, false, None);
                self.update(|pod| set_container(pod, status, "Pending"));
                return;
            }
        };
        let container_id = format!("fake://{}", pod.uid().unwrap_or_default());
        let started_at = now();
        let running = ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..ContainerState::default()
        };
        let status = container_status(&image, running, true, Some(container_id.clone()));
        if self
            .update(|pod| set_container(pod, status, "Running"))
            .is_none()
        {
            return;
        }
        let cap = env_of(&pod, ENV_MAX_OUTPUT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(RunLimits::default().max_output_bytes);
        let ended = match fault {
            Some(PodFault::DeadlineExceeded) => Ended::deadline(),
            Some(PodFault::Evicted) => Ended::evicted(),
            _ => {
                let control = RunControl {
                    cancel: self.cancel.clone(),
                    progress: None,
                };
                let result = self.executor.run(&spec, control).await;
                if self.cancel.is_cancelled() {
                    // Deleted: the pod and its log are gone.
                    return;
                }
                match result {
                    Ok(report) => {
                        Ended::from_report(report, fault == Some(PodFault::OomKilled), cap)
                    }
                    Err(e) => {
                        let waiting = ContainerState {
                            waiting: Some(ContainerStateWaiting {
                                reason: Some("RunContainerError".to_owned()),
                                message: Some(e.to_string()),
                            }),
                            ..ContainerState::default()
                        };
                        let status = container_status(&image, waiting, false, None);
                        self.update(|pod| set_container(pod, status, "Pending"));
                        return;
                    }
                }
            }
        };
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: ended.exit_code,
                reason: Some(ended.reason.to_owned()),
                message: Some(ended.message.clone()),
                started_at: Some(started_at),
                finished_at: Some(now()),
                container_id: Some(container_id.clone()),
                signal: None,
            }),
            ..ContainerState::default()
        };
        let status = container_status(&image, terminated, false, Some(container_id));
        let mut objects = self.cluster.lock();
        if let Some(log) = ended.log {
            if objects.pods.contains_key(&self.key) {
                objects.logs.insert(self.key.clone(), log);
            }
        }
        let Some(mut pod) = objects.pods.get(&self.key).cloned() else {
            return;
        };
        set_container(&mut pod, status, ended.phase);
        if let Some(s) = pod.status.as_mut() {
            s.reason = ended.pod_reason.map(str::to_owned);
            s.message = ended.pod_message.map(str::to_owned);
        }
        objects.put_pod(pod, "MODIFIED");
    }

    /// The run of the pod's container: its command on this host, its script and input from
    /// the mounted ConfigMap, its limits from the pod spec.
    async fn run_spec(&self, pod: &Pod) -> Result<RunSpec, String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let container = spec.containers.first().cloned().unwrap_or_default();
        let cm_name = spec
            .volumes
            .iter()
            .flatten()
            .find_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
            .ok_or("the pod mounts no ConfigMap")?;
        let cm_key = (self.key.0.clone(), cm_name.clone());
        let give_up = tokio::time::Instant::now() + MOUNT_WAIT;
        let data = loop {
            if let Some(cm) = self.cluster.lock().config_maps.get(&cm_key) {
                break cm.data.clone().unwrap_or_default();
            }
            if tokio::time::Instant::now() > give_up || self.cancel.is_cancelled() {
                return Err(format!("configmap \"{cm_name}\" not found"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let file_name = env_of(pod, ENV_SCRIPT_FILE).ok_or("no script file named")?;
        let script = data
            .get(&file_name)
            .cloned()
            .ok_or_else(|| format!("configmap \"{cm_name}\" has no key {file_name}"))?;
        let mut command = container.args.clone().unwrap_or_default();
        if let Some(program) = command.first_mut() {
            *program = host_program(program)
                .ok_or_else(|| format!("executable file not found in $PATH: {program}"))?;
        }
        let limits = container
            .resources
            .clone()
            .unwrap_or_default()
            .limits
            .unwrap_or_default();
        let tmp_bytes = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| {
                container
                    .volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == v.name && m.mount_path == TMP_MOUNT)
            })
            .and_then(|v| v.empty_dir.as_ref())
            .and_then(|e| e.size_limit.as_ref())
            .and_then(|q| parse_bytes(&q.0));
        let defaults = RunLimits::default();
        let run_limits = RunLimits {
            timeout_seconds: spec
                .active_deadline_seconds
                .and_then(|d| u64::try_from(d).ok())
                .unwrap_or(defaults.timeout_seconds),
            memory_bytes: limits
                .get("memory")
                .and_then(|q| parse_bytes(&q.0))
                .unwrap_or(defaults.memory_bytes),
            max_processes: defaults.max_processes,
            max_output_bytes: tmp_bytes.unwrap_or(defaults.max_output_bytes),
            cpu_time_ms: None,
        };
        let env = container
            .env
            .iter()
            .flatten()
            .filter(|e| !e.name.starts_with("INTEGR8S_") && e.name != "HOME")
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        let mounts_stdin = spec.volumes.iter().flatten().any(|v| {
            v.config_map
                .as_ref()
                .and_then(|c| c.items.as_ref())
                .is_some_and(|items| items.iter().any(|i| i.key == STDIN_KEY))
        });
        Ok(RunSpec {
            execution_id: pod.name_any(),
            lang: pod
                .labels()
                .get(LABEL_LANGUAGE)
                .cloned()
                .unwrap_or_default(),
            lang_version: String::new(),
            file_name,
            script,
            command,
            env,
            limits: run_limits,
            stdin: if mounts_stdin {
                data.get(STDIN_KEY).cloned()
            } else {
                None
            },
            prestart: None,
        })
    }
}

fn set_container(pod: &mut Pod, container: ContainerStatus, phase: &str) {
    let running = container
        .state
        .as_ref()
        .is_some_and(|s| s.running.is_some());
    let status = pod.status.get_or_insert_with(Default::default);
    status.phase = Some(phase.to_owned());
    status.container_statuses = Some(vec![container]);
    status.conditions = Some(vec![
        condition("PodScheduled", true),
        condition("Initialized", true),
        condition("ContainersReady", running),
        condition("Ready", running),
    ]);
    if running {
        status.pod_ip = Some("10.1.0.2".to_owned());
    }
}

fn env_of(pod: &Pod, name: &str) -> Option<String> {
    pod.spec
        .as_ref()?
        .containers
        .first()?
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// The host path of a container's program (images are not pulled: the host's interpreters
/// stand in for them).
fn host_program(program: &str) -> Option<String> {
    if program.starts_with('/') {
        return Path::new(program).exists().then(|| program.to_owned());
    }
    HOST_PATH
        .split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|p| Path::new(p).exists())
}

/// How the container ended, as the node reports it.
struct Ended {
    exit_code: i32,
    reason: &'static str,
    message: String,
    phase: &'static str,
    pod_reason: Option<&'static str>,
    pod_message: Option<&'static str>,
    log: Option<Vec<u8>>,
}

impl Ended {
    fn deadline() -> Self {
        Self {
            exit_code: 137,
            reason: "Error",
            message: termination_message(&Termination {
                exit_code: Some(137),
                ..Termination::default()
            }),
            phase: "Failed",
            pod_reason: Some("DeadlineExceeded"),
            pod_message: Some("Pod was active on the node longer than the specified deadline"),
            log: Some(frame_output(b"", b"", 0)),
        }
    }

    fn evicted() -> Self {
        Self {
            exit_code: 137,
            reason: "Error",
            message: String::new(),
            phase: "Failed",
            pod_reason: Some("Evicted"),
            pod_message: Some(
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi.",
            ),
            log: None,
        }
    }

    fn from_report(mut report: RunReport, oom: bool, cap: u64) -> Self {
        if oom {
            report.outcome = RunOutcome::OutOfMemory;
        }
        if report.output_truncated {
            // The sandbox marks its own cut; the container's files simply end there.
            for stream in [&mut report.stdout, &mut report.stderr] {
                if let Some(at) = stream.rfind("\n[output truncated:") {
                    stream.truncate(at);
                }
            }
        }
        let exit_code = match report.outcome {
            RunOutcome::Exited { code } => code,
            RunOutcome::Signaled { signal } => 128 + signal,
            _ => 137,
        };
        let timed_out = report.outcome == RunOutcome::TimedOut;
        let reason = match report.outcome {
            RunOutcome::OutOfMemory => "OOMKilled",
            RunOutcome::Exited { code: 0 } => "Completed",
            _ => "Error",
        };
        let termination = Termination {
            exit_code: Some(exit_code),
            wall_time: Some(report.wall_time),
            cpu_time: Some(report.cpu_user + report.cpu_system),
            peak_memory_bytes: Some(report.peak_memory_bytes),
        };
        Self {
            exit_code,
            reason,
            message: termination_message(&termination),
            phase: if exit_code == 0 && !timed_out {
                "Succeeded"
            } else {
                "Failed"
            },
            pod_reason: timed_out.then_some("DeadlineExceeded"),
            pod_message: timed_out
                .then_some("Pod was active on the node longer than the specified deadline"),
            log: Some(frame_output(
                report.stdout.as_bytes(),
                report.stderr.as_bytes(),
                cap,
            )),
        }
    }
}
