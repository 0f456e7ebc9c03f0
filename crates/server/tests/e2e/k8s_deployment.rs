//! A scaled-out deployment ([`Deployment`]) whose scripts run as Kubernetes pods: the fake
//! Kubernetes API server of `integr8s-k8s` (real HTTP on 127.0.0.1, its simulated kubelet
//! running each pod's command in a bubblewrap sandbox of this test process) and a kubeconfig
//! file pointing at it, which the roles read through their real settings (`k8s.connection =
//! kubeconfig`, `k8s.kubeconfig`, `k8s.context`).
//!
//! Sandbox uids of the fake kubelet: 450000 + 16·n (n counts the clusters this test process
//! starts), apart from the k8s crate's tests (400000 + 16·n) and the e2e servers (1000000+).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integr8s_core::ports::Executor;
use integr8s_k8s::fake::FakeCluster;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

use crate::deployment::Deployment;
use crate::harness::DEADLINE;

/// The roles of a deployment that runs scripts as pods.
pub const K8S_PIPELINE: [&str; 6] = [
    "api",
    "coordinator",
    "saga-orchestrator",
    "k8s-worker",
    "pod-monitor",
    "result-processor",
];

/// The executor namespace of the test deployments.
pub const NAMESPACE: &str = "integr8s-e2e-executor";

/// First sandbox uid of the fake kubelets of this test binary.
const KUBELET_UID_BASE: u32 = 450_000;

/// The runtime image map given to the k8s worker: fewer languages and versions than the API's
/// own registry and this host offer, so that what the API accepts shows where it comes from.
pub const IMAGE_MAP: &str = r#"
[[runtime]]
lang = "python"
file_ext = "py"
command = ["python{version}", "-I", "{file}"]
images = { "3.11" = "python:3.11-slim", "3.13" = "python:3.13-slim" }

[[runtime]]
lang = "ruby"
file_ext = "rb"
command = ["ruby", "{file}"]
images = { "3.3" = "ruby:3.3-alpine" }
"#;

/// Waits until `check` gives a value.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fake cluster and a deployment set up to use it (no role started yet).
pub struct K8sDeployment {
    pub d: Deployment,
    pub cluster: FakeCluster,
}

impl K8sDeployment {
    pub async fn new() -> K8sDeployment {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let executor = LocalExecutor::start(SandboxConfig {
            uid_base: KUBELET_UID_BASE + n * 16,
            max_concurrent: 4,
            ..SandboxConfig::default()
        })
        .await;
        let health = executor.health();
        assert!(health.ready, "sandbox of the fake kubelet: {health:?}");
        let cluster = FakeCluster::start(Arc::new(executor), "e2e-node")
            .await
            .expect("start the fake API server");
        let mut d = Deployment::new().await;
        let kubeconfig = d.dir().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_for(cluster.url())).expect("write kubeconfig");
        let images = d.dir().join("runtime-images.toml");
        std::fs::write(&images, IMAGE_MAP).expect("write the image map");
        for (key, value) in [
            ("INTEGR8S_K8S__CONNECTION", "kubeconfig".to_owned()),
            (
                "INTEGR8S_K8S__KUBECONFIG",
                kubeconfig.to_string_lossy().into_owned(),
            ),
            ("INTEGR8S_K8S__CONTEXT", "e2e".to_owned()),
            ("INTEGR8S_K8S__NAMESPACE", NAMESPACE.to_owned()),
            (
                "INTEGR8S_K8S__IMAGE_REGISTRY_FILE",
                images.to_string_lossy().into_owned(),
            ),
            // Objects left by a killed process are swept soon.
            ("INTEGR8S_K8S__SWEEP_INTERVAL_SECONDS", "2".to_owned()),
            ("INTEGR8S_K8S__RECONCILE_INTERVAL_SECONDS", "1".to_owned()),
            ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "5".to_owned()),
            ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "4".to_owned()),
            ("INTEGR8S_EXECUTION__MAX_PER_USER", "4".to_owned()),
        ] {
            d.set_env(key, value);
        }
        K8sDeployment { d, cluster }
    }

    /// API calls of the fake server so far, by `"<verb> <resource>"`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.cluster.calls()
    }

    /// Waits until no executor pod or ConfigMap is left.
    pub async fn wait_clean(&self) {
        eventually("no pod or ConfigMap left", || async {
            (self.cluster.pods().is_empty() && self.cluster.config_maps().is_empty()).then_some(())
        })
        .await;
    }

    pub async fn stop(self) {
        self.cluster.stop().await;
    }
}

/// A kubeconfig whose context `e2e` reaches `url` without credentials.
fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: {url}
users:
  - name: e2e
    user: {{}}
contexts:
  - name: e2e
    context:
      cluster: fake
      user: e2e
      namespace: {NAMESPACE}
current-context: e2e
"
    )
}
