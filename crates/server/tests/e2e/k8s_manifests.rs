//! `deploy/k8s/` cannot be applied here (no cluster), so, as for `deploy/compose.yaml`
//! ([`crate::compose`]), every Deployment is checked against the real binary: its container runs
//! a real subcommand, and the settings it gets (the ConfigMaps and the Secret of its `envFrom`,
//! its own `env`) pass `check-config --roles <role>`, which also loads the files a role reads at
//! start (the k8s worker's runtime image registry, from the ConfigMap mounted where its setting
//! points). Every role of a Kubernetes deployment has its Deployment, and none runs the local
//! worker beside the k8s worker.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use crate::compose::run;

const MANIFESTS: [(&str, &str); 6] = [
    (
        "namespace.yaml",
        include_str!("../../../../deploy/k8s/namespace.yaml"),
    ),
    (
        "network-policy.yaml",
        include_str!("../../../../deploy/k8s/network-policy.yaml"),
    ),
    (
        "quota.yaml",
        include_str!("../../../../deploy/k8s/quota.yaml"),
    ),
    (
        "rbac.yaml",
        include_str!("../../../../deploy/k8s/rbac.yaml"),
    ),
    (
        "roles.yaml",
        include_str!("../../../../deploy/k8s/roles.yaml"),
    ),
    (
        "runtime-images.yaml",
        include_str!("../../../../deploy/k8s/runtime-images.yaml"),
    ),
];
const README: &str = include_str!("../../../../README.md");

/// The roles a Kubernetes deployment runs, each in Deployments of its own.
const ROLES: [&str; 9] = [
    "api",
    "coordinator",
    "saga-orchestrator",
    "k8s-worker",
    "pod-monitor",
    "result-processor",
    "dlq-processor",
    "event-replay",
    "notifications",
];

/// Values made up for the keys of the Secret `integr8s-secrets`, which the operator creates
/// as the README says (the test checks that it names exactly these keys).
const SECRET: [(&str, &str); 6] = [
    (
        "INTEGR8S_DATABASE__URL",
        "postgres://integr8s:k8s-test@postgres:5432/integr8s",
    ),
    ("INTEGR8S_BUS__BROKERS", "kafka-0:9092"),
    ("INTEGR8S_LIMITER__REDIS_URL", "redis://redis:6379"),
    (
        "INTEGR8S_AUTH__SECRET",
        "k8s-test-secret-0123456789abcdef0123456789abcdef",
    ),
    // The API listens on 0.0.0.0, so it refuses the seeded accounts' default passwords.
    ("INTEGR8S_AUTH__ADMIN_PASSWORD", "k8s-test-admin-password"),
    ("INTEGR8S_AUTH__USER_PASSWORD", "k8s-test-user-password"),
];

fn documents() -> Vec<(&'static str, Value)> {
    let mut docs = Vec::new();
    for (file, text) in MANIFESTS {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            if !value.is_null() {
                docs.push((file, value));
            }
        }
    }
    docs
}

fn text(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: a string, not {v:?}"))
        .to_owned()
}

/// The data of every ConfigMap, by name.
fn config_maps(docs: &[(&str, Value)]) -> BTreeMap<String, BTreeMap<String, String>> {
    docs.iter()
        .filter(|(_, d)| d["kind"] == "ConfigMap")
        .map(|(file, d)| {
            let name = text(&d["metadata"]["name"], file);
            let data = d["data"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{file}: ConfigMap {name} without data"))
                .iter()
                .map(|(k, v)| {
                    let k = text(k, &name);
                    let v = text(v, &format!("{name}.{k} (quote it)"));
                    (k, v)
                })
                .collect();
            (name, data)
        })
        .collect()
}

/// The Secret's keys as the README's `kubectl create secret` names them.
fn readme_secret_keys() -> Vec<String> {
    let start = README
        .find("create secret generic integr8s-secrets")
        .expect("the README creates the Secret integr8s-secrets");
    let block = &README[start..];
    let block = &block[..block.find("```").expect("end of the block")];
    let mut keys: Vec<String> = block
        .split("--from-literal=")
        .skip(1)
        .map(|s| s.split('=').next().unwrap_or_default().to_owned())
        .collect();
    keys.sort();
    keys
}

struct Container {
    deployment: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// `mountPath` → the ConfigMap mounted there.
    mounts: BTreeMap<String, String>,
}

fn containers(docs: &[(&str, Value)]) -> Vec<Container> {
    let maps = config_maps(docs);
    let secret: BTreeMap<String, String> = SECRET
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut out = Vec::new();
    for (file, d) in docs.iter().filter(|(_, d)| d["kind"] == "Deployment") {
        let deployment = text(&d["metadata"]["name"], file);
        let pod = &d["spec"]["template"]["spec"];
        let volumes: BTreeMap<String, String> = pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let map = v["configMap"]["name"].as_str()?;
                Some((text(&v["name"], &deployment), map.to_owned()))
            })
            .collect();
        let list = pod["containers"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{deployment}: containers"));
        assert_eq!(list.len(), 1, "{deployment}: one container");
        let c = &list[0];
        assert!(
            c.get("command").is_none(),
            "{deployment}: the image's entry point is the binary; give the subcommand as args"
        );
        let args = c["args"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{deployment}: args"))
            .iter()
            .map(|a| text(a, &deployment))
            .collect();
        let mut env = BTreeMap::new();
        for from in c["envFrom"].as_sequence().into_iter().flatten() {
            if let Some(name) = from["configMapRef"]["name"].as_str() {
                let data = maps
                    .get(name)
                    .unwrap_or_else(|| panic!("{deployment}: no ConfigMap {name} in deploy/k8s"));
                env.extend(data.clone());
            } else if let Some(name) = from["secretRef"]["name"].as_str() {
                assert_eq!(name, "integr8s-secrets", "{deployment}");
                env.extend(secret.clone());
            } else {
                panic!("{deployment}: envFrom {from:?}");
            }
        }
        for var in c["env"].as_sequence().into_iter().flatten() {
            let name = text(&var["name"], &deployment);
            env.insert(name.clone(), text(&var["value"], &name));
        }
        let mounts = c["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let map = volumes.get(m["name"].as_str()?)?;
                Some((text(&m["mountPath"], &deployment), map.clone()))
            })
            .collect();
        out.push(Container {
            deployment,
            args,
            env,
            mounts,
        });
    }
    out
}

#[test]
fn every_k8s_deployment_runs_a_real_subcommand_with_a_valid_configuration() {
    let docs = documents();
    let maps = config_maps(&docs);
    let mut keys: Vec<String> = SECRET.iter().map(|(k, _)| (*k).to_owned()).collect();
    keys.sort();
    assert_eq!(
        readme_secret_keys(),
        keys,
        "the README's Secret and the values this test makes up for it"
    );
    let files = tempfile::tempdir().expect("temp dir");
    let mut seen = Vec::new();
    for mut c in containers(&docs) {
        let name = c.deployment.clone();
        let sub = c.args.first().cloned().unwrap_or_default();
        let (ok, help) = run(&[&sub, "--help"], &c.env);
        assert!(ok, "{name}: `integr8s {sub}` is not a subcommand: {help}");
        assert!(ROLES.contains(&sub.as_str()), "{name}: {sub} is not a role");
        assert_eq!(c.args.len(), 1, "{name}: settings go in the environment");
        // A file a role reads comes from a ConfigMap mounted where the setting points: the
        // check below reads that ConfigMap's copy.
        if let Some(path) = c.env.get("INTEGR8S_K8S__IMAGE_REGISTRY_FILE").cloned() {
            let path = Path::new(&path);
            let dir = path.parent().expect("a directory").to_string_lossy();
            let key = path.file_name().expect("a file").to_string_lossy();
            let map = c
                .mounts
                .get(dir.as_ref())
                .unwrap_or_else(|| panic!("{name}: nothing mounted at {dir}"));
            let content = maps
                .get(map)
                .and_then(|data| data.get(key.as_ref()))
                .unwrap_or_else(|| panic!("{name}: ConfigMap {map} has no key {key}"));
            let copy = files.path().join(format!("{name}-{key}"));
            std::fs::write(&copy, content).expect("write the copy");
            c.env.insert(
                "INTEGR8S_K8S__IMAGE_REGISTRY_FILE".into(),
                copy.to_string_lossy().into_owned(),
            );
        }
        let (ok, out) = run(&["check-config", "--roles", &sub], &c.env);
        assert!(ok, "{name}: {out}");
        seen.push(sub);
    }
    for role in ROLES {
        assert!(
            seen.iter().any(|s| s == role),
            "no Deployment runs {role}: {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|s| s == "local-worker"),
        "a Kubernetes deployment runs scripts as pods, not in a local worker beside them"
    );
}

#[test]
fn a_k8s_setting_that_is_wrong_is_caught_by_the_same_check() {
    let docs = documents();
    let worker = containers(&docs)
        .into_iter()
        .find(|c| c.args == ["k8s-worker"])
        .expect("a k8s-worker Deployment");
    // The image registry is loaded: a missing file, or one that is not a registry, is named.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = worker.env;
    let file = dir.path().join("runtime-images.toml");
    for content in [None, Some("[[runtime]]\nlang = 3\n")] {
        if let Some(content) = content {
            std::fs::write(&file, content).expect("write");
        }
        env.insert(
            "INTEGR8S_K8S__IMAGE_REGISTRY_FILE".into(),
            file.to_string_lossy().into_owned(),
        );
        let (ok, out) = run(&["check-config", "--roles", "k8s-worker"], &env);
        assert!(!ok && out.contains("k8s.image_registry_file"), "{out}");
    }
    env.remove("INTEGR8S_K8S__IMAGE_REGISTRY_FILE");
    let (ok, out) = run(&["check-config", "--roles", "k8s-worker"], &env);
    assert!(ok, "{out}");
    env.insert("INTEGR8S_K8S__NAMESPACE".into(), "default".into());
    let (ok, out) = run(&["check-config", "--roles", "k8s-worker"], &env);
    assert!(!ok && out.contains("k8s.namespace"), "{out}");
    env.remove("INTEGR8S_K8S__NAMESPACE");
    env.insert(
        "INTEGR8S_K8S__NAME_SPACE".into(),
        "integr8s-executor".into(),
    );
    let (ok, out) = run(&["check-config", "--roles", "k8s-worker"], &env);
    assert!(!ok && out.contains("INTEGR8S_K8S__NAME_SPACE"), "{out}");
    // Both kinds of worker in one process are refused.
    env.remove("INTEGR8S_K8S__NAME_SPACE");
    let (ok, out) = run(
        &["check-config", "--roles", "k8s-worker,local-worker"],
        &env,
    );
    assert!(!ok && out.contains("one kind of worker"), "{out}");
}
