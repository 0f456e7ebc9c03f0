//! The Kubernetes executor as a deployment: PostgreSQL, Redis, the broker, the fake Kubernetes
//! API server ([`K8sDeployment`]), and the roles api, coordinator, saga-orchestrator,
//! k8s-worker, pod-monitor and result-processor, each a separate OS process of the real binary
//! reaching the cluster through a kubeconfig file. Scripts submitted over HTTP run as pods and
//! end with the contract's statuses; the pod monitor and the k8s worker are killed (SIGKILL)
//! mid-watch and mid-create without an execution lost, run twice or left behind.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::harness::Client;
use crate::k8s_deployment::{eventually, K8sDeployment, K8S_PIPELINE};

/// How many events of each type the execution has (`GET /api/v1/executions/{id}/events`).
async fn event_counts(user: &Client, id: &str) -> BTreeMap<String, usize> {
    let r = user.get(&format!("/api/v1/executions/{id}/events")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut counts = BTreeMap::new();
    for e in r.body.as_array().expect("a list of events") {
        if let Some(t) = e["event_type"].as_str() {
            *counts.entry(t.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Every event of the execution's pod and outcome was emitted once, none twice.
async fn each_event_once(user: &Client, id: &str) {
    let counts = event_counts(user, id).await;
    for t in [
        "pod_created",
        "pod_scheduled",
        "pod_running",
        "execution_running",
        "execution_completed",
        "pod_succeeded",
    ] {
        assert!(counts.contains_key(t), "{id}: no {t} in {counts:?}");
    }
    for (t, n) in &counts {
        assert_eq!(*n, 1, "{id}: {t} in {counts:?}");
    }
}

async fn submit_as(user: &Client, script: &str, lang: &str, version: &str) -> (u16, Value) {
    let r = user
        .post(
            "/api/v1/execute",
            json!({"script": script, "lang": lang, "lang_version": version}),
        )
        .await;
    (r.status, r.body)
}

/// The per-execution pods the fake server stored, for these executions.
fn pods_created(k: &K8sDeployment, ids: &[String]) -> Vec<u64> {
    let created = k.cluster.pods_created();
    ids.iter()
        .map(|id| created.get(&format!("executor-{id}")).copied().unwrap_or(0))
        .collect()
}

/// API calls of one execution: the difference of the counts.
fn per_execution(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    after
        .iter()
        .filter(|(k, _)| {
            ["create ", "log ", "delete ", "watch-event "]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| format!("{k}: {}", v - before.get(k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k8s_roles_run_executions_as_pods_and_survive_being_killed() {
    let mut k = K8sDeployment::new().await;
    let names = k.d.start_all(&K8S_PIPELINE).await;
    for name in &names {
        let ready = k.d.wait_ready(name).await;
        let k8s_role = name.starts_with("k8s-worker") || name.starts_with("pod-monitor");
        assert_eq!(
            ready["checks"]["kubernetes"]["ready"] == true,
            k8s_role,
            "{name}: {ready}"
        );
        assert_eq!(ready["checks"]["sandbox"], Value::Null, "{name}: {ready}");
    }
    let user = k.d.login("api-1", "user", "user123").await;

    // What the API accepts is what the k8s worker's image map offers.
    let limits = user.get("/api/v1/k8s-limits").await;
    assert_eq!(limits.status, 200, "{}", limits.body);
    let runtimes = &limits.body["supported_runtimes"];
    assert_eq!(
        runtimes["python"]["versions"],
        json!(["3.11", "3.13"]),
        "{runtimes}"
    );
    assert_eq!(runtimes["ruby"]["versions"], json!(["3.3"]), "{runtimes}");
    assert!(runtimes.get("node").is_none(), "{runtimes}");
    let (status, body) = submit_as(&user, "console.log(1)", "node", "20").await;
    assert_eq!(status, 422, "node is not in the image map: {body}");
    let (status, body) = submit_as(&user, "print(1)", "python", "3.12").await;
    assert_eq!(status, 422, "python 3.12 is not in the image map: {body}");
    let (status, body) = submit_as(&user, "print(1)", "python", "3.13").await;
    assert_eq!(status, 200, "python 3.13 is in the image map: {body}");
    let only_in_map = body["execution_id"].as_str().expect("id").to_owned();
    let r = user.wait_terminal(&only_in_map).await;
    assert_eq!(
        k.cluster
            .pods_created()
            .get(&format!("executor-{only_in_map}")),
        Some(&1),
        "{r}"
    );
    k.wait_clean().await;

    // A hello world, followed over SSE, with the API calls it costs.
    let before = k.calls();
    let id = user.submit("print('hello from a pod')").await;
    let frames = user.sse(&format!("/api/v1/events/executions/{id}")).await;
    let last = frames.last().expect("frames");
    assert_eq!(last["event_type"], "result_stored", "{frames:?}");
    assert_eq!(last["result"]["stdout"], "hello from a pod\n", "{last}");
    let r = user.result(&id).await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
    k.wait_clean().await;
    let after = k.calls();
    let diff =
        |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    for key in [
        "create configmaps",
        "create pods",
        "delete pods",
        "delete configmaps",
    ] {
        assert_eq!(diff(key), 1, "{key}: {}", per_execution(&before, &after));
    }
    println!(
        "API calls of one execution: {}",
        per_execution(&before, &after)
    );
    each_event_once(&user, &id).await;

    // A failing script and a timeout end as they would locally.
    let failing = user
        .submit("import sys\nprint('bad', file=sys.stderr)\nraise SystemExit(4)")
        .await;
    let slow = user
        .submit("import time\nprint('started', flush=True)\ntime.sleep(60)")
        .await;
    let r = user.wait_terminal(&failing).await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["exit_code"], 4, "{r}");
    assert_eq!(r["stderr"], "bad\n", "{r}");
    let r = user.wait_terminal(&slow).await;
    assert_eq!(r["status"], "timeout", "{r}");
    assert_eq!(r["error_type"], "timeout", "{r}");
    assert_eq!(r["stdout"], "started\n", "{r}");

    // A cancel deletes the running pod at once.
    let id = user
        .submit("import time\nprint('waiting', flush=True)\ntime.sleep(60)")
        .await;
    user.wait_for(&id, |s| s == "running").await;
    let pod = format!("executor-{id}");
    let deletes = k.calls().get("delete pods").copied().unwrap_or(0);
    let r = user
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = user.wait_terminal(&id).await;
    assert_eq!(r["status"], "cancelled", "{r}");
    eventually("the cancelled pod deleted", || async {
        (!k.cluster
            .pods()
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(&pod)))
        .then_some(())
    })
    .await;
    assert!(k.calls()["delete pods"] > deletes);
    k.wait_clean().await;

    // The pod monitor killed mid-watch: its successor reports what is missing, once.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            user.submit(&format!("import time\ntime.sleep(1)\nprint({i} * 7)"))
                .await,
        );
    }
    eventually("a pod running", || async {
        k.cluster
            .pods()
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .then_some(())
    })
    .await;
    k.d.kill("pod-monitor-1").await;
    // Some pods end while nobody watches.
    eventually("a pod ended unwatched", || async {
        k.cluster
            .pods()
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
            .then_some(())
    })
    .await;
    k.d.restart("pod-monitor-1").await;
    for (i, id) in ids.iter().enumerate() {
        let r = user.wait_terminal(id).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["stdout"], format!("{}\n", i * 7), "{r}");
        each_event_once(&user, id).await;
    }
    assert_eq!(pods_created(&k, &ids), vec![1; ids.len()]);
    k.wait_clean().await;

    // The k8s worker killed mid-create during a batch: the create it had in flight is
    // completed by the API server, its successor finds the pod and creates nothing new.
    k.cluster.hold_creates("pods");
    let creates = k.calls().get("create pods").copied().unwrap_or(0);
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(user.submit(&format!("print('batch', {i})")).await);
    }
    eventually("a pod create in flight", || async {
        (k.calls().get("create pods").copied().unwrap_or(0) > creates).then_some(())
    })
    .await;
    k.d.kill("k8s-worker-1").await;
    k.cluster.release_creates(true);
    k.d.restart("k8s-worker-1").await;
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/events/executions/{id}"))
        .collect();
    let streams = join_all(paths.iter().map(|path| user.sse(path))).await;
    for ((i, id), frames) in ids.iter().enumerate().zip(streams) {
        let last = frames.last().expect("frames");
        assert_eq!(last["event_type"], "result_stored", "{id}: {frames:?}");
        assert_eq!(last["result"]["stdout"], format!("batch {i}\n"), "{last}");
        assert_eq!(last["result"]["status"], "completed", "{last}");
        each_event_once(&user, id).await;
    }
    assert_eq!(pods_created(&k, &ids), vec![1; ids.len()]);
    k.wait_clean().await;

    // Readiness of the Kubernetes roles follows the Kubernetes API.
    k.cluster.inject_call_fault(integr8s_k8s::fake::CallFault {
        verb: "list",
        resource: "pods",
        code: 503,
        times: 1_000_000,
    });
    let body = k.d.wait_health("k8s-worker-1", 503).await;
    assert_eq!(body["checks"]["kubernetes"]["ready"], false, "{body}");
    assert_eq!(k.d.health("coordinator-1", "ready").await.0, 200);
    k.cluster.clear_call_faults();
    k.d.wait_ready("k8s-worker-1").await;
    k.d.wait_ready("pod-monitor-1").await;

    // Nothing left in the namespace, and every role stops cleanly.
    assert!(k.cluster.pods().is_empty() && k.cluster.config_maps().is_empty());
    for name in names.iter().rev() {
        let status = k.d.stop(name).await;
        assert!(status.success(), "{name} ended with {status}");
    }
    k.stop().await;
}
