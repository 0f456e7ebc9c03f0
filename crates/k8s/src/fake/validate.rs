//! The API server's validation of what the executor sends, for the rules it relies on.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;

use super::status::ApiError;

/// The largest ConfigMap the API server stores.
const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

fn dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn validate_pod(pod: &Pod) -> Result<(), ApiError> {
    let name = pod.name_any();
    let invalid = |cause: &str| Err(ApiError::invalid("pods", &name, cause));
    if !dns_subdomain(&name) {
        return invalid("metadata.name: Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'");
    }
    let Some(spec) = &pod.spec else {
        return invalid("spec: Required value");
    };
    if spec.containers.is_empty() {
        return invalid("spec.containers: Required value");
    }
    if spec
        .containers
        .iter()
        .any(|c| c.image.as_deref().unwrap_or("").is_empty())
    {
        return invalid("spec.containers[0].image: Required value");
    }
    if spec.dns_policy.as_deref() == Some("None") {
        let nameservers = spec
            .dns_config
            .as_ref()
            .and_then(|d| d.nameservers.as_ref())
            .map_or(0, Vec::len);
        if nameservers == 0 {
            return invalid("spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None");
        }
    }
    if spec.active_deadline_seconds.is_some_and(|d| d < 1) {
        return invalid(
            "spec.activeDeadlineSeconds: Invalid value: must be greater than or equal to 1",
        );
    }
    if spec
        .restart_policy
        .as_deref()
        .is_some_and(|r| !["Always", "OnFailure", "Never"].contains(&r))
    {
        return invalid("spec.restartPolicy: Unsupported value");
    }
    Ok(())
}

pub fn validate_config_map(cm: &ConfigMap) -> Result<(), ApiError> {
    let name = cm.name_any();
    let invalid = |cause: &str| Err(ApiError::invalid("configmaps", &name, cause));
    if !dns_subdomain(&name) {
        return invalid("metadata.name: Invalid value");
    }
    let data = cm.data.iter().flatten();
    let mut size = 0;
    for (key, value) in data {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return invalid(&format!("data[{key}]: Invalid value: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
        }
        size += key.len() + value.len();
    }
    if size > MAX_CONFIG_MAP_BYTES {
        return invalid(&format!(
            "[]: Too long: must have at most {MAX_CONFIG_MAP_BYTES} bytes"
        ));
    }
    Ok(())
}
