//! The scaled-out system: PostgreSQL, Redis and a Kafka-protocol broker, and every role of the
//! pipeline a separate OS process of the real binary. Executions submitted through the API and
//! followed over SSE complete with the right output; each process answers its health port and
//! stops cleanly on SIGTERM; a lone role on the embedded adapters refuses to start.

use std::process::Command;

use futures::future::join_all;

use crate::deployment::{Deployment, PIPELINE};
use crate::harness::BIN;

#[tokio::test]
async fn every_role_in_its_own_process_runs_executions_end_to_end() {
    let mut d = Deployment::new().await;
    let names = d.start_all(&PIPELINE).await;
    for name in &names {
        let ready = d.wait_ready(name).await;
        assert_eq!(ready["checks"]["store"]["ready"], true, "{name}: {ready}");
        assert_eq!(ready["checks"]["bus"]["ready"], true, "{name}: {ready}");
        let role = name.rsplit_once('-').map(|(r, _)| r).unwrap_or_default();
        assert_eq!(ready["roles"], serde_json::json!([role]), "{name}: {ready}");
        // Redis where the limiter is used, the sandbox where scripts run, nowhere else.
        assert_eq!(
            ready["checks"]["redis"].is_object(),
            role == "api",
            "{name}: {ready}"
        );
        assert_eq!(
            ready["checks"]["sandbox"]["ready"] == true,
            role == "local-worker",
            "{name}: {ready}"
        );
        let (status, live) = d.health(name, "live").await;
        assert_eq!(status, 200, "{name}: {live}");
    }

    let user = d.login("api-1", "user", "user123").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push((i, user.submit(&format!("print({i} * 11)")).await));
    }
    let paths: Vec<String> = ids
        .iter()
        .map(|(_, id)| format!("/api/v1/events/executions/{id}"))
        .collect();
    let streams = join_all(paths.iter().map(|path| user.sse(path))).await;
    for ((i, id), frames) in ids.iter().zip(streams) {
        let last = frames.last().expect("frames");
        assert_eq!(last["event_type"], "result_stored", "{id}: {frames:?}");
        assert_eq!(last["result"]["stdout"], format!("{}\n", i * 11), "{last}");
        let r = user.result(id).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["exit_code"], 0, "{r}");
    }

    // Each process counts its own work on its health port.
    let sample = |text: &str, series: &str| -> f64 {
        text.lines()
            .filter_map(|l| l.strip_prefix(series))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum()
    };
    let worker = d.metrics("local-worker-1").await;
    assert_eq!(
        sample(&worker, "sandbox_runs_total{outcome=\"exited_zero\"}"),
        5.0,
        "{worker}"
    );
    let results = d.metrics("result-processor-1").await;
    assert_eq!(
        sample(&results, "script_executions_total{status=\"completed\"}"),
        5.0,
        "{results}"
    );
    assert!(!results.contains("sandbox_runs_total"), "{results}");

    // Each role is a process of its own.
    let mut pids: Vec<u32> = d.names().iter().filter_map(|n| d.pid(n)).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), PIPELINE.len());

    // A killed role comes back and the pipeline goes on.
    for name in ["coordinator-1", "result-processor-1"] {
        d.kill(name).await;
        d.restart(name).await;
        d.wait_ready(name).await;
    }
    let id = user.submit("print('after the restarts')").await;
    let r = user.wait_terminal(&id).await;
    assert_eq!(r["stdout"], "after the restarts\n", "{r}");

    // Readiness follows each dependency, in the processes that use it.
    d.redis.stop();
    let body = d.wait_health("api-1", 503).await;
    assert_eq!(body["checks"]["redis"]["ready"], false, "{body}");
    assert_eq!(d.health("coordinator-1", "ready").await.0, 200);
    d.redis.restart().await;
    d.wait_ready("api-1").await;

    d.broker.signal("-STOP");
    let body = d.wait_health("saga-orchestrator-1", 503).await;
    assert_eq!(body["checks"]["bus"]["ready"], false, "{body}");
    d.broker.signal("-CONT");
    d.wait_ready("saga-orchestrator-1").await;

    // A short blocking call: the roles are other processes.
    d.postgres.stop().expect("stop PostgreSQL");
    let body = d.wait_health("dlq-processor-1", 503).await;
    assert_eq!(body["checks"]["store"]["ready"], false, "{body}");
    d.postgres.restart().expect("restart PostgreSQL");
    d.wait_ready("dlq-processor-1").await;

    // A worker stopped with SIGTERM during a run does not leave it running: the run is
    // stopped and reported, and the process ends by itself.
    let id = user.submit("import time; time.sleep(60)").await;
    user.wait_for(&id, |s| s == "running").await;
    let status = d.stop("local-worker-1").await;
    assert!(status.success(), "local-worker-1 ended with {status}");
    let r = user.wait_terminal(&id).await;
    assert_eq!(r["status"], "error", "{r}");

    // Graceful stop: every other process ends by itself, successfully, on SIGTERM.
    for name in names.iter().rev().filter(|n| *n != "local-worker-1") {
        let status = d.stop(name).await;
        assert!(status.success(), "{name} ended with {status}");
    }
}

#[tokio::test]
async fn several_roles_share_a_process_with_serve_roles() {
    let mut d = Deployment::new().await;
    let api = d.start("api").await;
    let engine = d
        .start("coordinator+saga-orchestrator+local-worker+result-processor")
        .await;
    let ready = d.wait_ready(&engine).await;
    assert_eq!(
        ready["roles"],
        serde_json::json!([
            "coordinator",
            "saga-orchestrator",
            "local-worker",
            "result-processor"
        ]),
        "{ready}"
    );
    assert_eq!(ready["checks"]["sandbox"]["ready"], true, "{ready}");
    d.wait_ready(&api).await;

    let user = d.login(&api, "user", "user123").await;
    let id = user.submit("print('two processes')").await;
    let frames = user.sse(&format!("/api/v1/events/executions/{id}")).await;
    let last = frames.last().expect("frames");
    assert_eq!(last["result"]["stdout"], "two processes\n", "{frames:?}");
    for name in [engine, api] {
        let status = d.stop(&name).await;
        assert!(status.success(), "{name} ended with {status}");
    }
}

fn run_lone(role: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .args([role, "--data-dir"])
        .arg(dir.path())
        .envs(env.iter().copied())
        .env("INTEGR8S_HEALTH__PORT", "0")
        .output()
        .expect("run a role");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_lone_role_on_embedded_adapters_refuses_to_start_and_names_the_key() {
    // SQLite in the data dir (the default): the store is the first thing named.
    let (ok, stderr) = run_lone("coordinator", &[]);
    assert!(!ok, "a lone coordinator started on SQLite");
    assert!(
        stderr.contains("database.url") && stderr.contains("INTEGR8S_DATABASE__URL"),
        "{stderr}"
    );
    // With a shared database, the in-process bus is named next; the guard runs before any
    // connection is made, so the database need not exist.
    let db = (
        "INTEGR8S_DATABASE__URL",
        "postgres://integr8s@127.0.0.1:1/none",
    );
    let (ok, stderr) = run_lone("local-worker", &[db]);
    assert!(!ok && stderr.contains("bus.brokers"), "{stderr}");
    let bus = ("INTEGR8S_BUS__BROKERS", "127.0.0.1:1");
    let (ok, stderr) = run_lone("api", &[db, bus]);
    assert!(!ok && stderr.contains("limiter.redis_url"), "{stderr}");
}
