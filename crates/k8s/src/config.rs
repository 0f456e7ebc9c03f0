//! Settings of the Kubernetes executor and how to reach the cluster.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::K8sError;
use crate::images::ImageRegistry;

/// How the k8s worker and the pod monitor reach the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Connection {
    /// The service account of the pod we run in (the usual way in a cluster).
    InCluster,
    /// A kubeconfig file (`None`: `$KUBECONFIG` or `~/.kube/config`), optionally one context.
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
    /// In-cluster when running in a pod, else the default kubeconfig.
    #[default]
    Infer,
    /// A plain URL without credentials (a local proxy such as `kubectl proxy`, or a test server).
    Url(String),
}

/// Configuration of the Kubernetes executor (the `[k8s]` settings of the binary).
#[derive(Debug, Clone)]
pub struct K8sConfig {
    /// Namespace of the executor pods and their ConfigMaps. Never `default`.
    pub namespace: String,
    /// The runtime image registry file; `None`: the embedded one (official language images).
    pub image_registry_file: Option<PathBuf>,
    /// `runtimeClassName` of executor pods (e.g. `gvisor`); `None`: the cluster's default.
    pub runtime_class_name: Option<String>,
    /// Run executor pods in their own user namespace (`hostUsers: false`). Needs Kubernetes
    /// 1.33+ (or the `UserNamespacesSupport` feature gate) and a runtime that supports it.
    pub user_namespaces: bool,
    /// The uid and gid executor containers run as (never 0).
    pub run_as_user: i64,
    /// Size of the memory-backed work directory (`/work`) of a pod, in bytes.
    pub work_dir_bytes: u64,
    /// Size of the memory-backed `/tmp` of a pod (also holds the captured output), in bytes.
    pub tmp_bytes: u64,
    /// CPU request and limit of an executor container (Kubernetes quantities).
    pub cpu_request: String,
    pub cpu_limit: String,
    pub connection: Connection,
    /// How often the worker deletes executor pods and ConfigMaps whose execution ended or is
    /// unknown.
    pub sweep_interval: Duration,
    /// How long the pod monitor waits before ending a `running` execution whose pod is gone
    /// without an outcome (deleted from outside while nobody watched).
    pub missing_pod_grace: Duration,
    /// How often the pod monitor compares running executions with the pods that exist.
    pub reconcile_interval: Duration,
}

impl Default for K8sConfig {
    fn default() -> Self {
        Self {
            namespace: "integr8s-executor".to_owned(),
            image_registry_file: None,
            runtime_class_name: None,
            user_namespaces: true,
            run_as_user: 1000,
            work_dir_bytes: 64 * 1024 * 1024,
            tmp_bytes: 32 * 1024 * 1024,
            cpu_request: "200m".to_owned(),
            cpu_limit: "1000m".to_owned(),
            connection: Connection::Infer,
            sweep_interval: Duration::from_secs(60),
            missing_pod_grace: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(15),
        }
    }
}

impl K8sConfig {
    /// Checks the settings; the messages name the setting to change.
    pub fn validate(&self) -> Result<(), K8sError> {
        let invalid = |message: String| Err(K8sError::Config(message));
        if self.namespace.is_empty() {
            return invalid("k8s.namespace is empty: set it to the namespace of the executor pods (e.g. integr8s-executor)".to_owned());
        }
        if self.namespace == "default" {
            return invalid(
                "k8s.namespace is 'default': executor pods must run in a namespace of their own, \
                 with the deny-all network policies of deploy/k8s/ applied to it; create one \
                 (kubectl apply -f deploy/k8s/namespace.yaml) and set k8s.namespace \
                 (INTEGR8S_K8S__NAMESPACE) to it, e.g. integr8s-executor"
                    .to_owned(),
            );
        }
        if self.run_as_user <= 0 {
            return invalid(format!(
                "k8s.run_as_user is {}: executor containers never run as root; use an unprivileged uid such as 1000",
                self.run_as_user
            ));
        }
        if self.work_dir_bytes == 0 || self.tmp_bytes == 0 {
            return invalid(
                "k8s.work_dir_bytes and k8s.tmp_bytes must be above 0 (size caps of the pod's memory-backed volumes)"
                    .to_owned(),
            );
        }
        for (key, value) in [
            ("k8s.cpu_request", &self.cpu_request),
            ("k8s.cpu_limit", &self.cpu_limit),
        ] {
            if crate::quantity::parse_cpu_millis(value).is_none() {
                return invalid(format!(
                    "{key} = '{value}' is not a CPU quantity (e.g. 200m or 1)"
                ));
            }
        }
        Ok(())
    }

    /// The image registry named by the settings.
    pub fn image_registry(&self) -> Result<ImageRegistry, K8sError> {
        match &self.image_registry_file {
            None => Ok(ImageRegistry::embedded()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    K8sError::Config(format!("k8s.image_registry_file {}: {e}", path.display()))
                })?;
                ImageRegistry::from_toml(&text).map_err(|e| {
                    K8sError::Config(format!("k8s.image_registry_file {}: {e}", path.display()))
                })
            }
        }
    }

    /// A client for the configured cluster.
    pub async fn client(&self) -> Result<kube::Client, K8sError> {
        let mut config = match &self.connection {
            Connection::InCluster => kube::Config::incluster()
                .map_err(|e| K8sError::Config(format!("in-cluster configuration: {e}")))?,
            Connection::Infer => kube::Config::infer()
                .await
                .map_err(|e| K8sError::Config(format!("kubernetes configuration: {e}")))?,
            Connection::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                let loaded = match path {
                    Some(path) => kube::config::Kubeconfig::read_from(path).map_err(|e| {
                        K8sError::Config(format!("kubeconfig {}: {e}", path.display()))
                    })?,
                    None => kube::config::Kubeconfig::read()
                        .map_err(|e| K8sError::Config(format!("kubeconfig: {e}")))?,
                };
                kube::Config::from_custom_kubeconfig(loaded, &options)
                    .await
                    .map_err(|e| K8sError::Config(format!("kubeconfig: {e}")))?
            }
            Connection::Url(url) => {
                let uri = url
                    .parse()
                    .map_err(|e| K8sError::Config(format!("k8s url '{url}': {e}")))?;
                let mut config = kube::Config::new(uri);
                config.default_namespace = self.namespace.clone();
                config
            }
        };
        // No retries inside the client: a failing call is retried by redelivering its command
        // (bounded by the consumer's attempts, and not holding up the commands behind it), and
        // the pod watch has its own back-off.
        config.default_retry = false;
        kube::Client::try_from(config)
            .map_err(|e| K8sError::Config(format!("kubernetes client: {e}")))
    }
}

/// A cheap call that tells whether the API answers for `pods`' namespace (a list of at most
/// one pod).
pub(crate) async fn ping(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
) -> Result<(), K8sError> {
    pods.list(&kube::api::ListParams::default().limit(1))
        .await?;
    Ok(())
}

impl K8sConfig {
    /// Whether the Kubernetes API answers `client` in the executor namespace (readiness).
    pub async fn ping(&self, client: &kube::Client) -> Result<(), K8sError> {
        ping(&kube::Api::namespaced(client.clone(), &self.namespace)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_is_refused_with_what_to_do() {
        let config = K8sConfig {
            namespace: "default".to_owned(),
            ..K8sConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("k8s.namespace"), "{err}");
        assert!(err.contains("deploy/k8s/namespace.yaml"), "{err}");
        assert!(K8sConfig::default().validate().is_ok());
    }

    #[test]
    fn root_and_bad_quantities_are_refused() {
        let root = K8sConfig {
            run_as_user: 0,
            ..K8sConfig::default()
        };
        assert!(root
            .validate()
            .unwrap_err()
            .to_string()
            .contains("run_as_user"));
        let cpu = K8sConfig {
            cpu_limit: "lots".to_owned(),
            ..K8sConfig::default()
        };
        assert!(cpu
            .validate()
            .unwrap_err()
            .to_string()
            .contains("k8s.cpu_limit"));
    }
}
