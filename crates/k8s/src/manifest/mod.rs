//! What the k8s worker sends to the cluster for one execution: a ConfigMap with the script and
//! the entrypoint, and a hardened Pod that runs it. Names, labels and annotations here are how
//! the pod monitor, cleanup and the orphan sweep find an execution's objects.

mod configmap;
pub mod pod;

use std::collections::BTreeMap;

use integr8s_core::execution::RunLimits;

pub use configmap::build_config_map;
pub use pod::build_pod;

/// The entrypoint script of every executor container (see the file for its framing).
pub const ENTRYPOINT: &str = include_str!("entrypoint.sh");
/// The ConfigMap key of the entrypoint.
pub const ENTRYPOINT_KEY: &str = "entrypoint.sh";
/// The ConfigMap key of the standard input, when the run has one.
pub const STDIN_KEY: &str = "stdin";
/// The name of the one container of an executor pod.
pub const CONTAINER: &str = "executor";

pub const LABEL_APP: &str = "app";
pub const LABEL_COMPONENT: &str = "component";
pub const LABEL_EXECUTION: &str = "integr8s.io/execution-id";
pub const LABEL_LANGUAGE: &str = "integr8s.io/language";
pub const APP: &str = "integr8s";
pub const COMPONENT: &str = "executor";
/// Selects every executor pod and ConfigMap.
pub const EXECUTOR_SELECTOR: &str = "app=integr8s,component=executor";

pub const ANNOTATION_USER: &str = "integr8s.io/user-id";
pub const ANNOTATION_CORRELATION: &str = "integr8s.io/correlation-id";
pub const ANNOTATION_SAGA: &str = "integr8s.io/saga-id";
pub const ANNOTATION_LIMITS: &str = "integr8s.io/limits";
pub const ANNOTATION_CREATED_BY: &str = "integr8s.io/created-by";

/// Environment of the entrypoint (see `entrypoint.sh`).
pub const ENV_SCRIPT_FILE: &str = "INTEGR8S_SCRIPT_FILE";
pub const ENV_MAX_OUTPUT: &str = "INTEGR8S_MAX_OUTPUT_BYTES";

/// Mount points inside the container.
pub const SCRIPT_MOUNT: &str = "/scripts";
pub const ENTRY_MOUNT: &str = "/entry";
pub const TMP_MOUNT: &str = "/tmp";

/// The pod of an execution.
pub fn pod_name(execution_id: &str) -> String {
    format!("executor-{execution_id}")
}

/// The ConfigMap of an execution.
pub fn config_map_name(execution_id: &str) -> String {
    format!("script-{execution_id}")
}

/// Whether an execution id can name Kubernetes objects and label them (a DNS label once
/// prefixed, at most 63 characters as a label value).
pub fn valid_execution_id(execution_id: &str) -> bool {
    !execution_id.is_empty()
        && execution_id.len() <= 50
        && execution_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !execution_id.ends_with('-')
}

/// Who asked for the run, carried on the pod so that the monitor's events keep the user and
/// the correlation of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub user_id: Option<String>,
    pub correlation_id: Option<String>,
    pub saga_id: String,
}

/// The labels of an execution's pod and ConfigMap.
pub fn labels(execution_id: &str, lang: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_APP.to_owned(), APP.to_owned()),
        (LABEL_COMPONENT.to_owned(), COMPONENT.to_owned()),
        (LABEL_EXECUTION.to_owned(), execution_id.to_owned()),
        (LABEL_LANGUAGE.to_owned(), label_value(lang)),
    ])
}

/// The annotations of an execution's pod: its origin and limits.
pub fn annotations(origin: &Origin, limits: &RunLimits) -> BTreeMap<String, String> {
    let mut map = BTreeMap::from([
        (ANNOTATION_CREATED_BY.to_owned(), "k8s-worker".to_owned()),
        (ANNOTATION_SAGA.to_owned(), origin.saga_id.clone()),
        (
            ANNOTATION_LIMITS.to_owned(),
            serde_json::to_string(limits).unwrap_or_default(),
        ),
    ]);
    if let Some(user) = &origin.user_id {
        map.insert(ANNOTATION_USER.to_owned(), user.clone());
    }
    if let Some(correlation) = &origin.correlation_id {
        map.insert(ANNOTATION_CORRELATION.to_owned(), correlation.clone());
    }
    map
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_labels_are_valid_for_kubernetes() {
        assert!(valid_execution_id("0b6f3c3e-8f6a-4c1e-9d7e-3f1a2b4c5d6e"));
        assert!(!valid_execution_id("Upper"));
        assert!(!valid_execution_id("../etc"));
        assert!(!valid_execution_id(""));
        assert_eq!(label_value("c++ (gcc)"), "c____gcc");
    }
}
