//! The hardened pod of an execution (ARCHITECTURE.md §6, ORIGINAL.md §5): non-root, read-only
//! root filesystem, no privilege escalation, no capabilities, seccomp `RuntimeDefault`, no
//! service-account token, no service links, no DNS, its own user namespace, a deadline from the
//! run's time limit, requests and limits, and size-capped memory-backed volumes for `/tmp` and
//! the work dir.

use std::collections::BTreeMap;

use integr8s_core::execution::RunLimits;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, KeyToPath, Pod,
    PodDNSConfig, PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    annotations, config_map_name, labels, pod_name, Origin, CONTAINER, ENTRYPOINT_KEY,
    ENV_MAX_OUTPUT, ENV_SCRIPT_FILE, SCRIPT_MOUNT, STDIN_KEY, TMP_MOUNT,
};
use crate::config::K8sConfig;
use crate::images::{ContainerRuntime, WORK_DIR};
use crate::quantity::format_bytes;

/// A nameserver nothing answers on: `dnsPolicy: None` needs at least one, and the pod's own
/// loopback makes every lookup fail at once instead of reaching a cluster or node resolver.
pub const NO_DNS_NAMESERVER: &str = "127.0.0.1";

/// What one execution's pod is made of.
#[derive(Debug, Clone)]
pub struct PodRequest<'a> {
    pub execution_id: &'a str,
    pub runtime: &'a ContainerRuntime,
    pub limits: &'a RunLimits,
    /// CPU request and limit (quantities), from the run request or the configuration.
    pub cpu_request: String,
    pub cpu_limit: String,
    /// Memory request in bytes (at most the limit, `limits.memory_bytes`).
    pub memory_request_bytes: u64,
    pub has_stdin: bool,
    pub origin: &'a Origin,
}

pub fn build_pod(config: &K8sConfig, request: &PodRequest<'_>) -> Pod {
    let memory_limit = request.limits.memory_bytes;
    let memory_request = request.memory_request_bytes.min(memory_limit);
    let resources = ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(request.cpu_request.clone())),
            ("memory".to_owned(), Quantity(format_bytes(memory_request))),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(request.cpu_limit.clone())),
            ("memory".to_owned(), Quantity(format_bytes(memory_limit))),
        ])),
        ..ResourceRequirements::default()
    };
    let mut env = vec![
        env_var(ENV_SCRIPT_FILE, &request.runtime.file_name),
        env_var(ENV_MAX_OUTPUT, &request.limits.max_output_bytes.to_string()),
        env_var("HOME", TMP_MOUNT),
    ];
    env.extend(request.runtime.env.iter().map(|(k, v)| env_var(k, v)));
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(request.runtime.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec![
            "/bin/sh".to_owned(),
            format!("{SCRIPT_MOUNT}/{ENTRYPOINT_KEY}"),
        ]),
        args: Some(request.runtime.command.clone()),
        working_dir: Some(WORK_DIR.to_owned()),
        env: Some(env),
        resources: Some(resources),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(config.run_as_user),
            run_as_group: Some(config.run_as_user),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            mount("script", SCRIPT_MOUNT, true),
            mount("work", WORK_DIR, false),
            mount("tmp", TMP_MOUNT, false),
        ]),
        termination_message_path: Some("/dev/termination-log".to_owned()),
        termination_message_policy: Some("File".to_owned()),
        stdin: Some(false),
        tty: Some(false),
        ..Container::default()
    };
    let mut items = vec![
        key_to_path(&request.runtime.file_name),
        key_to_path(ENTRYPOINT_KEY),
    ];
    if request.has_stdin {
        items.push(key_to_path(STDIN_KEY));
    }
    let spec = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".to_owned()),
        active_deadline_seconds: Some(
            i64::try_from(request.limits.timeout_seconds.max(1)).unwrap_or(i64::MAX),
        ),
        termination_grace_period_seconds: Some(1),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        dns_policy: Some("None".to_owned()),
        dns_config: Some(PodDNSConfig {
            nameservers: Some(vec![NO_DNS_NAMESERVER.to_owned()]),
            searches: Some(Vec::new()),
            options: None,
        }),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        host_users: Some(!config.user_namespaces),
        runtime_class_name: config.runtime_class_name.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(config.run_as_user),
            run_as_group: Some(config.run_as_user),
            fs_group: Some(config.run_as_user),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "script".to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: config_map_name(request.execution_id),
                    items: Some(items),
                    default_mode: Some(0o444),
                    optional: Some(false),
                }),
                ..Volume::default()
            },
            memory_volume("work", config.work_dir_bytes),
            memory_volume("tmp", config.tmp_bytes),
        ]),
        ..PodSpec::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(request.execution_id)),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels(request.execution_id, &request.runtime.lang)),
            annotations: Some(annotations(request.origin, request.limits)),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn key_to_path(key: &str) -> KeyToPath {
    KeyToPath {
        key: key.to_owned(),
        path: key.to_owned(),
        mode: None,
    }
}

/// A memory-backed (tmpfs) emptyDir capped at `bytes`; its pages count against the pod's
/// memory limit.
fn memory_volume(name: &str, bytes: u64) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            size_limit: Some(Quantity(format_bytes(bytes))),
        }),
        ..Volume::default()
    }
}
