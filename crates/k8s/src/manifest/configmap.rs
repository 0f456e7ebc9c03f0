//! The ConfigMap of an execution: the script under its file name, the entrypoint, and the
//! standard input when there is one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{config_map_name, labels, ENTRYPOINT, ENTRYPOINT_KEY, STDIN_KEY};

/// The ConfigMap holding what the pod of `execution_id` runs. Immutable: it never changes
/// after creation, which also spares the kubelet from watching it.
pub fn build_config_map(
    namespace: &str,
    execution_id: &str,
    lang: &str,
    file_name: &str,
    script: &str,
    stdin: Option<&str>,
) -> ConfigMap {
    let mut data = BTreeMap::from([
        (file_name.to_owned(), script.to_owned()),
        (ENTRYPOINT_KEY.to_owned(), ENTRYPOINT.to_owned()),
    ]);
    if let Some(stdin) = stdin {
        data.insert(STDIN_KEY.to_owned(), stdin.to_owned());
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(execution_id)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels(execution_id, lang)),
            ..ObjectMeta::default()
        },
        data: Some(data),
        immutable: Some(true),
        ..ConfigMap::default()
    }
}
