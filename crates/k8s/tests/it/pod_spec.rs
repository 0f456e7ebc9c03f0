//! The generated Pod and ConfigMap: a snapshot of each (tests/snapshots/, rewritten with
//! UPDATE_SNAPSHOTS=1), and every hardening field asserted one by one.

use std::path::PathBuf;

use integr8s_core::execution::RunLimits;
use integr8s_k8s::manifest::pod::PodRequest;
use integr8s_k8s::manifest::{build_config_map, build_pod, Origin, ENTRYPOINT};
use integr8s_k8s::{ImageRegistry, K8sConfig};
use serde_json::{json, Value};

const ID: &str = "0b6f3c3e-8f6a-4c1e-9d7e-3f1a2b4c5d6e";

fn snapshot(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
    assert_eq!(
        text,
        expected,
        "{name} differs from {} (run with UPDATE_SNAPSHOTS=1 and review the diff)",
        path.display()
    );
}

fn pod(config: &K8sConfig) -> Value {
    let runtime = ImageRegistry::embedded().resolve("python", "3.11").unwrap();
    let limits = RunLimits {
        timeout_seconds: 7,
        memory_bytes: 256 * 1024 * 1024,
        ..RunLimits::default()
    };
    let origin = Origin {
        user_id: Some("alice".to_owned()),
        correlation_id: Some("corr-1".to_owned()),
        saga_id: "saga-1".to_owned(),
    };
    let request = PodRequest {
        execution_id: ID,
        runtime: &runtime,
        limits: &limits,
        cpu_request: "200m".to_owned(),
        cpu_limit: "1000m".to_owned(),
        memory_request_bytes: 128 * 1024 * 1024,
        has_stdin: true,
        origin: &origin,
    };
    serde_json::to_value(build_pod(config, &request)).unwrap()
}

#[test]
fn the_pod_is_hardened() {
    let config = K8sConfig {
        runtime_class_name: Some("gvisor".to_owned()),
        ..K8sConfig::default()
    };
    let pod = pod(&config);
    snapshot("pod", &pod);

    let at = |pointer: &str| {
        pod.pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} missing"))
            .clone()
    };
    assert_eq!(at("/metadata/name"), json!(format!("executor-{ID}")));
    assert_eq!(at("/metadata/namespace"), json!("integr8s-executor"));
    assert_eq!(at("/metadata/labels/app"), json!("integr8s"));
    assert_eq!(at("/metadata/labels/component"), json!("executor"));
    assert_eq!(at("/metadata/labels/integr8s.io~1execution-id"), json!(ID));
    // Pod-level hardening.
    assert_eq!(at("/spec/restartPolicy"), json!("Never"));
    assert_eq!(at("/spec/activeDeadlineSeconds"), json!(7));
    assert_eq!(at("/spec/automountServiceAccountToken"), json!(false));
    assert_eq!(at("/spec/enableServiceLinks"), json!(false));
    assert_eq!(at("/spec/dnsPolicy"), json!("None"));
    assert_eq!(at("/spec/dnsConfig/nameservers"), json!(["127.0.0.1"]));
    assert_eq!(at("/spec/hostUsers"), json!(false));
    assert_eq!(at("/spec/hostNetwork"), json!(false));
    assert_eq!(at("/spec/hostPID"), json!(false));
    assert_eq!(at("/spec/hostIPC"), json!(false));
    assert_eq!(at("/spec/runtimeClassName"), json!("gvisor"));
    assert_eq!(at("/spec/securityContext/runAsNonRoot"), json!(true));
    assert_eq!(at("/spec/securityContext/runAsUser"), json!(1000));
    assert_eq!(at("/spec/securityContext/runAsGroup"), json!(1000));
    assert_eq!(
        at("/spec/securityContext/seccompProfile/type"),
        json!("RuntimeDefault")
    );
    // Container-level hardening.
    let c = "/spec/containers/0";
    assert_eq!(
        at(&format!("{c}/securityContext/runAsNonRoot")),
        json!(true)
    );
    assert_eq!(at(&format!("{c}/securityContext/runAsUser")), json!(1000));
    assert_eq!(
        at(&format!("{c}/securityContext/readOnlyRootFilesystem")),
        json!(true)
    );
    assert_eq!(
        at(&format!("{c}/securityContext/allowPrivilegeEscalation")),
        json!(false)
    );
    assert_eq!(at(&format!("{c}/securityContext/privileged")), json!(false));
    assert_eq!(
        at(&format!("{c}/securityContext/capabilities/drop")),
        json!(["ALL"])
    );
    assert_eq!(
        at(&format!("{c}/securityContext/seccompProfile/type")),
        json!("RuntimeDefault")
    );
    assert_eq!(at(&format!("{c}/resources/limits/memory")), json!("256Mi"));
    assert_eq!(at(&format!("{c}/resources/limits/cpu")), json!("1000m"));
    assert_eq!(
        at(&format!("{c}/resources/requests/memory")),
        json!("128Mi")
    );
    assert_eq!(at(&format!("{c}/resources/requests/cpu")), json!("200m"));
    assert_eq!(at(&format!("{c}/image")), json!("python:3.11-slim"));
    assert_eq!(
        at(&format!("{c}/args")),
        json!(["python3.11", "-I", "/work/main.py"])
    );
    // Size-capped memory-backed volumes for the work dir and /tmp; the script read-only.
    let volumes = at("/spec/volumes");
    let volume = |name: &str| {
        volumes
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        volume("work")["emptyDir"],
        json!({"medium": "Memory", "sizeLimit": "64Mi"})
    );
    assert_eq!(
        volume("tmp")["emptyDir"],
        json!({"medium": "Memory", "sizeLimit": "32Mi"})
    );
    assert_eq!(
        volume("script")["configMap"]["name"],
        json!(format!("script-{ID}"))
    );
    let mounts = at(&format!("{c}/volumeMounts"));
    assert!(mounts
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/scripts" && m["readOnly"] == true));
    assert!(mounts
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/work"));
    assert!(mounts
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/tmp"));
}

#[test]
fn user_namespaces_and_the_runtime_class_follow_the_configuration() {
    let config = K8sConfig {
        user_namespaces: false,
        ..K8sConfig::default()
    };
    let pod = pod(&config);
    assert_eq!(pod.pointer("/spec/hostUsers"), Some(&json!(true)));
    assert_eq!(pod.pointer("/spec/runtimeClassName"), None);
}

#[test]
fn the_config_map_holds_script_entrypoint_and_input() {
    let cm = build_config_map(
        "integr8s-executor",
        ID,
        "python",
        "main.py",
        "print(1)\n",
        Some("in\n"),
    );
    let cm = serde_json::to_value(cm).unwrap();
    let mut snap = cm.clone();
    // The entrypoint has its own file; the snapshot keeps the ConfigMap readable.
    snap["data"]["entrypoint.sh"] = json!("<src/manifest/entrypoint.sh>");
    snapshot("configmap", &snap);
    assert_eq!(cm["metadata"]["name"], json!(format!("script-{ID}")));
    assert_eq!(cm["metadata"]["labels"]["app"], json!("integr8s"));
    assert_eq!(cm["metadata"]["labels"]["component"], json!("executor"));
    assert_eq!(
        cm["metadata"]["labels"]["integr8s.io/execution-id"],
        json!(ID)
    );
    assert_eq!(cm["immutable"], json!(true));
    assert_eq!(cm["data"]["main.py"], json!("print(1)\n"));
    assert_eq!(cm["data"]["stdin"], json!("in\n"));
    assert_eq!(cm["data"]["entrypoint.sh"], json!(ENTRYPOINT));
}
