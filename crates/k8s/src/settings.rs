//! The `[k8s]` section of the binary's configuration, as read from TOML or the environment
//! (`INTEGR8S_K8S__<KEY>`), and its check into a [`K8sConfig`]. Every message names the key.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Connection, K8sConfig};
use crate::error::K8sError;
use crate::quantity::parse_bytes;

/// The section with its defaults, documented key by key, for the embedded default file.
pub const DEFAULT_SECTION: &str = r#"[k8s]
# Namespace of the executor pods and their ConfigMaps (never "default"; see deploy/k8s/).
namespace = "integr8s-executor"
# Runtime image registry (TOML, see crates/k8s/runtime-images.toml); "" = the embedded one.
image_registry_file = ""
# runtimeClassName of executor pods, e.g. "gvisor"; "" = the cluster's default.
runtime_class_name = ""
# Run executor pods in their own user namespace (hostUsers: false; Kubernetes 1.33+).
user_namespaces = true
# uid and gid of executor containers (never 0).
run_as_user = 1000
# Size caps of the memory-backed work dir and /tmp of a pod.
work_dir_size = "64Mi"
tmp_size = "32Mi"
# CPU request and limit of an executor container when the run asks for none.
cpu_request = "200m"
cpu_limit = "1000m"
# How to reach the API: "infer" (in-cluster in a pod, else kubeconfig), "in-cluster",
# "kubeconfig" (kubeconfig and context below; "" = $KUBECONFIG or ~/.kube/config), or "url".
connection = "infer"
kubeconfig = ""
context = ""
url = ""
# Orphan sweep of the k8s worker, and the pod monitor's check of running executions.
sweep_interval_seconds = 60
reconcile_interval_seconds = 15
missing_pod_grace_seconds = 30
"#;

/// The raw `[k8s]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct K8sSettings {
    pub namespace: String,
    pub image_registry_file: String,
    pub runtime_class_name: String,
    pub user_namespaces: bool,
    pub run_as_user: i64,
    pub work_dir_size: String,
    pub tmp_size: String,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub connection: String,
    pub kubeconfig: String,
    pub context: String,
    pub url: String,
    pub sweep_interval_seconds: u64,
    pub reconcile_interval_seconds: u64,
    pub missing_pod_grace_seconds: u64,
}

impl Default for K8sSettings {
    fn default() -> Self {
        Self {
            namespace: "integr8s-executor".to_owned(),
            image_registry_file: String::new(),
            runtime_class_name: String::new(),
            user_namespaces: true,
            run_as_user: 1000,
            work_dir_size: "64Mi".to_owned(),
            tmp_size: "32Mi".to_owned(),
            cpu_request: "200m".to_owned(),
            cpu_limit: "1000m".to_owned(),
            connection: "infer".to_owned(),
            kubeconfig: String::new(),
            context: String::new(),
            url: String::new(),
            sweep_interval_seconds: 60,
            reconcile_interval_seconds: 15,
            missing_pod_grace_seconds: 30,
        }
    }
}

impl K8sSettings {
    /// The checked configuration.
    pub fn to_config(&self) -> Result<K8sConfig, K8sError> {
        let size = |key: &str, value: &str| {
            parse_bytes(value).filter(|b| *b > 0).ok_or_else(|| {
                K8sError::Config(format!("k8s.{key} = '{value}' is not a size (e.g. 64Mi)"))
            })
        };
        let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let connection = match self.connection.as_str() {
            "infer" => Connection::Infer,
            "in-cluster" => Connection::InCluster,
            "kubeconfig" => Connection::Kubeconfig {
                path: text(&self.kubeconfig).map(PathBuf::from),
                context: text(&self.context),
            },
            "url" if !self.url.is_empty() => Connection::Url(self.url.clone()),
            "url" => {
                return Err(K8sError::Config(
                    "k8s.connection = 'url' needs k8s.url (e.g. http://127.0.0.1:8001 of kubectl proxy)".to_owned(),
                ))
            }
            other => {
                return Err(K8sError::Config(format!(
                    "k8s.connection = '{other}': use infer, in-cluster, kubeconfig or url"
                )))
            }
        };
        let seconds = |key: &str, value: u64| {
            if value == 0 {
                Err(K8sError::Config(format!("k8s.{key} must be at least 1")))
            } else {
                Ok(Duration::from_secs(value))
            }
        };
        let config = K8sConfig {
            namespace: self.namespace.clone(),
            image_registry_file: text(&self.image_registry_file).map(PathBuf::from),
            runtime_class_name: text(&self.runtime_class_name),
            user_namespaces: self.user_namespaces,
            run_as_user: self.run_as_user,
            work_dir_bytes: size("work_dir_size", &self.work_dir_size)?,
            tmp_bytes: size("tmp_size", &self.tmp_size)?,
            cpu_request: self.cpu_request.clone(),
            cpu_limit: self.cpu_limit.clone(),
            connection,
            sweep_interval: seconds("sweep_interval_seconds", self.sweep_interval_seconds)?,
            reconcile_interval: seconds(
                "reconcile_interval_seconds",
                self.reconcile_interval_seconds,
            )?,
            missing_pod_grace: seconds(
                "missing_pod_grace_seconds",
                self.missing_pod_grace_seconds,
            )?,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Section {
        k8s: K8sSettings,
    }

    #[test]
    fn the_documented_section_is_the_default() {
        let section: Section = toml::from_str(DEFAULT_SECTION).unwrap();
        assert_eq!(section.k8s, K8sSettings::default());
    }

    #[test]
    fn the_defaults_make_a_valid_configuration() {
        let config = K8sSettings::default().to_config().unwrap();
        assert_eq!(config.namespace, "integr8s-executor");
        assert_eq!(config.work_dir_bytes, 64 * 1024 * 1024);
        assert_eq!(config.connection, Connection::Infer);
        assert_eq!(config.runtime_class_name, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = |settings: K8sSettings, key: &str| {
            let err = settings.to_config().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        };
        bad(
            K8sSettings {
                namespace: "default".to_owned(),
                ..K8sSettings::default()
            },
            "k8s.namespace",
        );
        bad(
            K8sSettings {
                connection: "carrier-pigeon".to_owned(),
                ..K8sSettings::default()
            },
            "k8s.connection",
        );
        bad(
            K8sSettings {
                tmp_size: "big".to_owned(),
                ..K8sSettings::default()
            },
            "k8s.tmp_size",
        );
        let url = K8sSettings {
            connection: "url".to_owned(),
            url: "http://127.0.0.1:8001".to_owned(),
            runtime_class_name: "gvisor".to_owned(),
            ..K8sSettings::default()
        }
        .to_config()
        .unwrap();
        assert_eq!(
            url.connection,
            Connection::Url("http://127.0.0.1:8001".to_owned())
        );
        assert_eq!(url.runtime_class_name.as_deref(), Some("gvisor"));
    }
}
