//! `deploy/compose.yaml` cannot be run here (no Docker), so it is checked against the real
//! binary: every integr8s service runs a real subcommand, its settings pass `check-config` for
//! its role (topology guard included), there are two of each role, `migrate` runs first, and
//! the image installs what the local worker needs.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use serde_yaml::Value;

use crate::harness::BIN;

const COMPOSE: &str = include_str!("../../../../deploy/compose.yaml");
const DOCKERFILE: &str = include_str!("../../../../deploy/Dockerfile");
const INSTALL_DEPS: &str = include_str!("../../../../scripts/install-deps.sh");

const ROLES: [&str; 8] = [
    "api",
    "coordinator",
    "saga-orchestrator",
    "local-worker",
    "result-processor",
    "dlq-processor",
    "event-replay",
    "notifications",
];

/// Compose's interpolation as far as the file uses it: `${NAME:-default}` takes the default,
/// `${NAME:?message}` (a value the operator must give) a value made up for the test.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else {
            let name = inner.split(":?").next().unwrap_or(inner);
            assert!(inner.contains(":?"), "{name}: give a default or require it");
            out.push_str(&format!(
                "compose-test-{}-0123456789abcdef0123456789",
                name.to_lowercase()
            ));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

struct Service {
    name: String,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    depends_on: Value,
}

fn integr8s_services() -> Vec<Service> {
    let mut doc: Value = serde_yaml::from_str(COMPOSE).expect("compose.yaml is YAML");
    doc.apply_merge().expect("merge keys");
    // Merge keys inside merged mappings (an alias of a mapping that merges another).
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().expect("services");
    let mut out = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("service name").to_owned();
        let ours = service["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("integr8s"));
        if !ours {
            continue;
        }
        assert!(
            service.get("<<").is_none(),
            "{name}: a merge key was left unmerged"
        );
        let command = service["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: command as a list"))
            .iter()
            .map(|c| c.as_str().expect("command words").to_owned())
            .collect();
        let env = service["environment"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: environment as a mapping"))
            .iter()
            .map(|(k, v)| {
                let k = k.as_str().expect("variable name").to_owned();
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => panic!("{name}: {k} must be quoted, not {other:?}"),
                };
                (k, interpolate(&v))
            })
            .collect();
        out.push(Service {
            name,
            command,
            env,
            depends_on: service["depends_on"].clone(),
        });
    }
    out
}

/// Runs the binary with exactly `env` (nothing inherited); whether it succeeded, and its output.
pub(crate) fn run(args: &[&str], env: &BTreeMap<String, String>) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run integr8s");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_compose_service_runs_a_real_subcommand_with_a_valid_configuration() {
    let services = integr8s_services();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut uid_bases = HashSet::new();
    for s in &services {
        let sub = s.command.first().map(String::as_str).unwrap_or_default();
        let (ok, help) = run(&[sub, "--help"], &s.env);
        assert!(
            ok,
            "{}: `integr8s {sub}` is not a subcommand: {help}",
            s.name
        );
        let (ok, out) = if sub == "migrate" {
            run(&["check-config"], &s.env)
        } else {
            assert!(ROLES.contains(&sub), "{}: {sub} is not a role", s.name);
            assert_eq!(
                s.depends_on["migrate"]["condition"], "service_completed_successfully",
                "{}: starts after migrate",
                s.name
            );
            run(&["check-config", "--roles", sub], &s.env)
        };
        assert!(ok, "{}: {out}", s.name);
        *count
            .entry(
                ROLES
                    .iter()
                    .find(|r| **r == sub)
                    .copied()
                    .unwrap_or("migrate"),
            )
            .or_default() += 1;
        if sub == "local-worker" {
            let base = s.env.get("INTEGR8S_SANDBOX__UID_BASE").cloned();
            assert!(
                uid_bases.insert(base.clone()),
                "{}: two local workers share sandbox uids ({base:?})",
                s.name
            );
        }
    }
    assert_eq!(count.get("migrate"), Some(&1), "{count:?}");
    for role in ROLES {
        assert!(count.get(role) >= Some(&2), "two of {role}: {count:?}");
    }
}

#[test]
fn a_compose_setting_that_is_wrong_is_caught_by_the_same_check() {
    // The check above can fail: a lone role without the bus is refused, naming the key.
    let mut api = integr8s_services()
        .into_iter()
        .find(|s| s.command == ["api"])
        .expect("an api service");
    api.env.remove("INTEGR8S_BUS__BROKERS");
    let (ok, out) = run(&["check-config", "--roles", "api"], &api.env);
    assert!(!ok && out.contains("bus.brokers"), "{out}");
    api.env
        .insert("INTEGR8S_BUS__BROKER".into(), "kafka:9092".into());
    let (ok, out) = run(&["check-config", "--roles", "api"], &api.env);
    assert!(!ok && out.contains("INTEGR8S_BUS__BROKER"), "{out}");
}

#[test]
fn the_image_runs_the_binary_and_installs_the_runtimes() {
    assert!(
        DOCKERFILE.contains(r#"ENTRYPOINT ["/usr/local/bin/integr8s"]"#),
        "the image's entry point is the binary, so a service's command is a subcommand"
    );
    let packages = INSTALL_DEPS
        .lines()
        .find_map(|l| l.strip_prefix("packages=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("the package list of install-deps.sh");
    for package in packages.split_whitespace() {
        assert!(
            DOCKERFILE.split_whitespace().any(|w| w == package),
            "the image lacks {package}"
        );
    }
}
