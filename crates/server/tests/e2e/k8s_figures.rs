//! Figures of the Kubernetes executor, measured in one run on one deployment (the same
//! PostgreSQL, Redis, broker, API, coordinator, saga orchestrator and result processor):
//! `integr8s bench --base-url` while the k8s worker and the pod monitor run scripts as pods on
//! the fake cluster, then while a local worker runs them in its sandbox, alternating; and the
//! fake API server's count of the calls each execution cost.
//!
//! Ignored by default (it only measures); run it with
//! `cargo test -p integr8s-server --test e2e k8s_figures -- --ignored --nocapture`.

use std::collections::BTreeMap;

use crate::harness::BIN;
use crate::k8s_deployment::{K8sDeployment, K8S_PIPELINE};

/// Runs of each bench (`--runs`); the bench reports their median.
const RUNS: &str = "9";
/// Rounds of each kind, alternating.
const ROUNDS: usize = 3;

/// `integr8s bench --base-url` against the deployment's API: the median submit → result time
/// of a Python hello world, in milliseconds.
async fn bench(api: &str) -> f64 {
    let out = tokio::process::Command::new(BIN)
        .args(["bench", "--base-url", api, "--only", "api", "--runs", RUNS])
        .args(["--username", "user", "--password", "user123"])
        .output()
        .await
        .expect("run the bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("api python hello world (submit -> result): median "))
        .and_then(|l| l.trim_end_matches(" ms").trim().parse().ok())
        .unwrap_or_else(|| panic!("no median in {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measures figures for the README; run with --ignored --nocapture"]
async fn figures_time_the_k8s_path_adds_and_api_calls_per_execution() {
    let mut k = K8sDeployment::new().await;
    let names = k.d.start_all(&K8S_PIPELINE).await;
    for name in &names {
        k.d.wait_ready(name).await;
    }
    let api = k.d.api("api-1").to_owned();
    let mut k8s = Vec::new();
    let mut local = Vec::new();
    let mut calls = BTreeMap::<String, u64>::new();
    let mut executions = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            k.d.stop("local-worker-1").await;
            k.d.restart("k8s-worker-1").await;
            k.d.restart("pod-monitor-1").await;
            k.d.wait_ready("k8s-worker-1").await;
            k.d.wait_ready("pod-monitor-1").await;
            // (The k8s worker now catches up with the local runs' results, deleting objects
            // that never existed: the API calls are counted in the first round only.)
        }
        let before = k.calls();
        k8s.push(bench(&api).await);
        k.wait_clean().await;
        let created = k.cluster.pods_created();
        assert!(created.values().all(|n| *n == 1), "{created:?}");
        if round == 0 {
            for (key, n) in k.calls() {
                calls.insert(key.clone(), n - before.get(&key).copied().unwrap_or(0));
            }
            executions = created.len();
        }

        // The same deployment with a local worker instead.
        k.d.stop("k8s-worker-1").await;
        k.d.stop("pod-monitor-1").await;
        if round == 0 {
            k.d.start("local-worker").await;
        } else {
            k.d.restart("local-worker-1").await;
        }
        k.d.wait_ready("local-worker-1").await;
        local.push(bench(&api).await);
    }
    println!("medians per round (ms): k8s {k8s:?}, local {local:?}");
    let median = |xs: &[f64]| {
        let mut xs = xs.to_vec();
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let (k8s_ms, local_ms) = (median(&k8s), median(&local));
    println!(
        "median of the rounds: k8s path {k8s_ms:.1} ms, local worker {local_ms:.1} ms, \
         added {:.1} ms, ratio {:.2}",
        k8s_ms - local_ms,
        k8s_ms / local_ms
    );
    let per = |key: &str| calls.get(key).copied().unwrap_or(0) as f64 / executions as f64;
    println!(
        "API calls per execution (first round, {executions} executions): create configmaps {:.2}, create pods {:.2}, \
         watch events {:.2}, log reads {:.2}, delete pods {:.2}, delete configmaps {:.2}; \
         besides: {calls:?}",
        per("create configmaps"),
        per("create pods"),
        per("watch-event pods"),
        per("log pods"),
        per("delete pods"),
        per("delete configmaps"),
    );
    assert!(executions > 0 && k8s_ms.is_finite() && local_ms.is_finite());
    assert_eq!(per("create pods"), 1.0);
    for name in k.d.names() {
        if k.d.pid(&name).is_some() {
            k.d.stop(&name).await;
        }
    }
    k.stop().await;
}
