//! Failures across processes of the scaled-out system: a cancel sent to one API process stops
//! the run on the worker process that runs it; with Redis stopped requests are served and the
//! fail-open counter moves; with PostgreSQL stopped the API answers 503 in the contract's shape
//! and every execution acknowledged before ends once it is back; with the broker paused,
//! submissions are stored and run once it resumes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::chaos::UID_BASE;
use crate::deployment::Deployment;
use crate::harness::{descendants, script_processes, Client, DEADLINE};

/// The uids of this file's workers, after the chaos test's.
const FAILURES_UID_BASE: u32 = UID_BASE + 256;

/// Short leases, so that a worker that could not renew is noticed quickly.
const ENV: [(&str, &str); 2] = [
    ("INTEGR8S_WORKER__HEARTBEAT_MS", "250"),
    ("INTEGR8S_WORKER__LEASE_MS", "1000"),
];

async fn pipeline(d: &mut Deployment, apis: usize, workers: u32, uid_base: u32) {
    for _ in 0..apis {
        d.start("api").await;
    }
    for role in ["coordinator", "saga-orchestrator", "result-processor"] {
        d.start(role).await;
    }
    for w in 0..workers {
        d.start_with("local-worker", Some(uid_base + 64 * w), &[])
            .await;
    }
    for name in d.names() {
        d.wait_ready(&name).await;
    }
}

/// The value of a counter (summed over its label sets) in a Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_cancel_sent_to_one_api_stops_the_run_on_another_process() {
    let mut d = Deployment::with_env(&ENV).await;
    pipeline(&mut d, 2, 2, FAILURES_UID_BASE).await;
    let on_a = d.login("api-1", "user", "user123").await;
    let on_b = Client::login(d.api("api-2"), "user", "user123")
        .await
        .expect("login");
    let id = on_a.submit("import time\ntime.sleep(60)").await;
    on_a.wait_for(&id, |s| s == "running").await;
    // The worker process that runs the script.
    let start = Instant::now();
    let worker = loop {
        let running: Vec<String> = ["local-worker-1", "local-worker-2"]
            .into_iter()
            .filter(|w| {
                d.pid(w)
                    .is_some_and(|pid| !script_processes(pid).is_empty())
            })
            .map(str::to_owned)
            .collect();
        if running.len() == 1 {
            break running[0].clone();
        }
        assert!(start.elapsed() < DEADLINE, "no worker runs the script");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for api in ["api-1", "api-2"] {
        let pid = d.pid(api).expect("api pid");
        assert!(descendants(pid).is_empty(), "{api} runs no script");
    }

    let r = on_b
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancellation_requested", "{}", r.body);
    let done = on_a.wait_terminal(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let pid = d.pid(&worker).expect("worker pid");
    let start = Instant::now();
    while !script_processes(pid).is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "the script still runs on {worker}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both workers go on running scripts.
    for i in 0..4 {
        let r = on_b.run(&format!("print({i})")).await;
        assert_eq!(r["stdout"], format!("{i}\n"), "{r}");
    }
}

#[tokio::test]
async fn with_redis_stopped_requests_are_served_and_counted_as_fail_open() {
    let mut d =
        Deployment::with_env(&[ENV[0], ENV[1], ("INTEGR8S_RATE_LIMIT__ENABLED", "true")]).await;
    pipeline(&mut d, 1, 1, FAILURES_UID_BASE + 128).await;
    let base = d.api("api-1").to_owned();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(get("/api/v1/k8s-limits").await.0, 200);
    let before = sample(&d.metrics("api-1").await, "rate_limit_fail_open_total");
    d.redis.stop();
    // Rate-limited requests that need nothing else of Redis.
    for path in ["/api/v1/k8s-limits", "/api/v1/example-scripts"]
        .into_iter()
        .cycle()
        .take(6)
    {
        let (status, body) = get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let after = sample(&d.metrics("api-1").await, "rate_limit_fail_open_total");
    assert!(
        after >= before + 6.0,
        "fail-open counter {before} -> {after}"
    );
    d.redis.restart().await;
    d.wait_ready("api-1").await;
}

#[tokio::test]
async fn with_postgres_stopped_the_api_answers_503_and_loses_nothing_acknowledged() {
    let mut d = Deployment::with_env(&ENV).await;
    pipeline(&mut d, 1, 1, FAILURES_UID_BASE + 192).await;
    let user = d.login("api-1", "user", "user123").await;
    // Acknowledged before the outage: some run across it, and end while it lasts.
    let mut ids = Vec::new();
    for i in 0..4 {
        let script = format!("import time\ntime.sleep({})\nprint({i})", 1 + i % 2);
        ids.push((i, user.submit(&script).await));
    }
    user.wait_for(&ids[0].1, |s| s == "running").await;
    d.postgres.stop().expect("stop PostgreSQL");
    let r = user.get("/api/v1/user/executions").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "Service temporarily unavailable", "type": "ServiceUnavailableError"})
    );
    let r = user
        .post(
            "/api/v1/execute",
            json!({"script": "print(1)", "lang": "python", "lang_version": "3.11"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "ServiceUnavailableError", "{}", r.body);
    // Longer than the runs: they end while the store is away.
    tokio::time::sleep(Duration::from_secs(6)).await;
    d.postgres.restart().expect("restart PostgreSQL");
    for name in d.names() {
        d.wait_ready(&name).await;
    }
    for (i, id) in &ids {
        let r = user.wait_terminal(id).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["stdout"], format!("{i}\n"), "{r}");
    }
    let id = user.submit("print('after')").await;
    assert_eq!(user.wait_terminal(&id).await["stdout"], "after\n");
}

#[tokio::test]
async fn with_the_broker_paused_submissions_are_stored_and_run_when_it_resumes() {
    let mut d = Deployment::with_env(&ENV).await;
    pipeline(&mut d, 1, 1, FAILURES_UID_BASE + 320).await;
    let user = d.login("api-1", "user", "user123").await;
    assert_eq!(user.run("print('warm')").await["stdout"], "warm\n");
    d.broker.signal("-STOP");
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = user
            .send(
                user.http
                    .post(format!("{}/api/v1/execute", user.base))
                    .header("X-CSRF-Token", &user.csrf)
                    .json(&json!({"script": format!("print({i} + 100)"), "lang": "python", "lang_version": "3.11"}))
                    .timeout(DEADLINE),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push((i, r.body["execution_id"].as_str().expect("id").to_owned()));
    }
    // Stored while the broker is away.
    for (_, id) in &ids {
        let r = user.result(id).await;
        assert_eq!(r["status"], "queued", "{r}");
    }
    d.broker.signal("-CONT");
    for (i, id) in &ids {
        let r: Value = user.wait_terminal(id).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["stdout"], format!("{}\n", i + 100), "{r}");
    }
}

/// Longer than a worker's first attempts at storing an outcome add up to (each waits up to
/// the store's 5 s for a connection).
const LONG_OUTAGE: Duration = Duration::from_secs(45);

#[tokio::test]
async fn a_run_that_ends_during_a_long_store_outage_is_reported_when_the_store_returns() {
    let mut d = Deployment::with_env(&ENV).await;
    pipeline(&mut d, 1, 1, FAILURES_UID_BASE + 512).await;
    let user = d.login("api-1", "user", "user123").await;
    let id = user
        .submit("import time\ntime.sleep(1)\nprint('outlived')")
        .await;
    user.wait_for(&id, |s| s == "running").await;
    d.postgres.stop().expect("stop PostgreSQL");
    tokio::time::sleep(LONG_OUTAGE).await;
    d.postgres.restart().expect("restart PostgreSQL");
    // The worker kept its lease: only its own report ends the execution.
    let r = user.wait_terminal(&id).await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["stdout"], "outlived\n", "{r}");
    let admin = d.login("api-1", "admin", "admin123").await;
    let queue = admin.get("/api/v1/admin/executions/queue").await;
    assert_eq!(queue.body["active_count"], 0, "{}", queue.body);
}
