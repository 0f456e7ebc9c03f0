//! Every manifest under deploy/k8s/ (and deploy/k8s/cilium/) parses into its Kubernetes type with no unknown field: a
//! document is read into k8s-openapi's type and written back, and must come back unchanged
//! (a field the type does not know would be dropped). The CiliumNetworkPolicy (a CRD) is read
//! into a small typed struct that refuses unknown fields. The deny-all policies select the
//! executor pods; the RBAC of each role is the minimum it needs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s")
}

/// Every document of every manifest, with the file it came from.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<_> = [deploy_dir(), deploy_dir().join("cilium")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let values: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for value in values.into_iter().filter(|v| !v.is_null()) {
            docs.push((name.clone(), value));
        }
    }
    docs
}

/// Reads `doc` as `T` and checks that writing it back gives the same document.
fn typed<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back, doc,
        "{file}: {} {} has fields its type does not know (or values it rewrites)",
        doc["kind"], doc["metadata"]["name"]
    );
    object
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CiliumNetworkPolicy {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: CiliumSpec,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CiliumSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    endpoint_selector: LabelSelector,
    ingress: Vec<BTreeMap<String, Value>>,
    egress: Vec<BTreeMap<String, Value>>,
    enable_default_deny: DefaultDeny,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultDeny {
    ingress: bool,
    egress: bool,
}

fn executor_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_owned(), "integr8s".to_owned()),
        ("component".to_owned(), "executor".to_owned()),
    ])
}

#[test]
fn every_manifest_is_a_known_kubernetes_type_with_no_unknown_field() {
    let mut kinds = BTreeMap::<String, usize>::new();
    let mut roles = BTreeMap::new();
    let mut deployments = Vec::new();
    for (file, doc) in documents() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        *kinds.entry(kind.clone()).or_default() += 1;
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(&file, &doc)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(&file, &doc)),
            "Role" => {
                let role = typed::<Role>(&file, &doc);
                roles.insert(role.metadata.name.clone().unwrap_or_default(), role);
            }
            "RoleBinding" => drop(typed::<RoleBinding>(&file, &doc)),
            "ConfigMap" => drop(typed::<ConfigMap>(&file, &doc)),
            "Service" => drop(typed::<Service>(&file, &doc)),
            "ResourceQuota" => drop(typed::<ResourceQuota>(&file, &doc)),
            "Deployment" => deployments.push(typed::<Deployment>(&file, &doc)),
            "NetworkPolicy" => {
                let policy = typed::<NetworkPolicy>(&file, &doc);
                let spec = policy.spec.unwrap();
                assert_eq!(
                    spec.pod_selector.unwrap().match_labels,
                    Some(executor_labels())
                );
                assert_eq!(
                    spec.policy_types,
                    Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
                );
                assert_eq!(spec.ingress, Some(vec![]), "no ingress rule");
                assert_eq!(spec.egress, Some(vec![]), "no egress rule");
            }
            "CiliumNetworkPolicy" => {
                let policy: CiliumNetworkPolicy = typed(&file, &doc);
                assert_eq!(policy.api_version, "cilium.io/v2");
                assert_eq!(
                    policy.spec.endpoint_selector.match_labels,
                    Some(executor_labels())
                );
                assert!(policy.spec.ingress.is_empty() && policy.spec.egress.is_empty());
                assert!(
                    policy.spec.enable_default_deny.ingress
                        && policy.spec.enable_default_deny.egress
                );
            }
            other => panic!("{file}: no test knows kind {other}"),
        }
    }
    for kind in [
        "NetworkPolicy",
        "CiliumNetworkPolicy",
        "Role",
        "Deployment",
        "Namespace",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} in deploy/k8s: {kinds:?}"
        );
    }

    // A Deployment for every role of the binary.
    let mut role_args: Vec<String> = deployments
        .iter()
        .map(|d| {
            let spec = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            spec.containers[0].args.as_ref().unwrap()[0].clone()
        })
        .collect();
    role_args.sort();
    assert_eq!(
        role_args,
        [
            "api",
            "coordinator",
            "dlq-processor",
            "event-replay",
            "k8s-worker",
            "notifications",
            "pod-monitor",
            "result-processor",
            "saga-orchestrator"
        ]
    );

    // Minimal RBAC: the worker creates and deletes, the monitor only reads.
    let verbs = |role: &str, resource: &str| -> Vec<String> {
        roles[role]
            .rules
            .iter()
            .flatten()
            .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
            .flat_map(|r| r.verbs.clone())
            .collect()
    };
    assert_eq!(
        verbs("integr8s-k8s-worker", "pods"),
        ["create", "delete", "get", "list"]
    );
    assert_eq!(
        verbs("integr8s-k8s-worker", "configmaps"),
        ["create", "delete", "get", "list"]
    );
    assert_eq!(
        verbs("integr8s-pod-monitor", "pods"),
        ["get", "list", "watch"]
    );
    assert_eq!(verbs("integr8s-pod-monitor", "pods/log"), ["get"]);
    assert!(verbs("integr8s-pod-monitor", "configmaps").is_empty());
}

#[test]
fn an_unknown_field_is_caught() {
    let doc: Value = serde_saphyr::from_str(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labelz: {a: b}\n",
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| typed::<Namespace>("inline", &doc));
    assert!(result.is_err(), "a misspelt field must fail the check");
}

#[test]
fn the_image_map_config_map_is_the_embedded_registry() {
    let docs = documents();
    let (_, doc) = docs
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "integr8s-runtime-images")
        .expect("the runtime image ConfigMap");
    let shipped = doc["data"]["runtime-images.toml"].as_str().unwrap();
    assert_eq!(shipped, integr8s_k8s::images::EMBEDDED_IMAGES);
    assert!(integr8s_k8s::ImageRegistry::from_toml(shipped).is_ok());
}
