//! Figures of the scaled-out system, measured in one run (ignored by default; it measures, the
//! other tests check):
//! `cargo test -p integr8s-server --test e2e scale_out_figures -- --ignored --nocapture`
//!
//! - `integr8s bench --base-url` against the scaled-out system with one local worker, then
//!   with two: hello-world latency against bare `python3`, and throughput of a hello world
//!   and of a script that sleeps 0.5 s (which needs slots, not CPU);
//! - `integr8s bench --only api`: the all-in-one server, for the same latency ratio.
//!
//! The coordinator admits 8 runs at once (any user); each worker has 4 sandbox slots, so a
//! second worker adds slots.

use std::time::{Duration, Instant};

use crate::chaos::UID_BASE;
use crate::deployment::Deployment;
use crate::harness::{BIN, DEADLINE};

const RUNS: &str = "24";
const IN_FLIGHT: &str = "8";
const SLEEPER: &str = "import time\ntime.sleep(0.5)";

async fn bench(args: &[&str]) -> String {
    let out = tokio::process::Command::new(BIN)
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn deployment_figures(api: &str, label: &str) {
    for script in ["print('hello world')", SLEEPER] {
        let out = bench(&[
            "--base-url",
            api,
            "--runs",
            RUNS,
            "--concurrency",
            IN_FLIGHT,
            "--script",
            script,
        ])
        .await;
        println!("--- scaled out, {label}, throughput script {script:?}\n{out}");
    }
}

#[tokio::test]
#[ignore = "measures figures for the README; run on its own"]
async fn scale_out_figures() {
    let mut d = Deployment::new().await;
    let admits_eight = [
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "8"),
        ("INTEGR8S_EXECUTION__MAX_PER_USER", "8"),
    ];
    d.start("api").await;
    d.start_with("coordinator", None, &admits_eight).await;
    d.start("saga-orchestrator").await;
    d.start("result-processor").await;
    d.start_with("local-worker", Some(UID_BASE + 640), &[])
        .await;
    for name in d.names() {
        d.wait_ready(&name).await;
    }
    let api = d.api("api-1").to_owned();
    deployment_figures(&api, "1 local worker").await;

    let second = d
        .start_with("local-worker", Some(UID_BASE + 704), &[])
        .await;
    d.wait_ready(&second).await;
    // Until the second worker takes part (its consumer joined the group).
    let user = d.login("api-1", "admin", "admin123").await;
    let start = Instant::now();
    loop {
        user.run("print(1)").await;
        let metrics = d.metrics(&second).await;
        if metrics
            .lines()
            .any(|l| l.starts_with("sandbox_runs_total{"))
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the second worker runs nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    deployment_figures(&api, "2 local workers").await;

    let out = bench(&["--only", "api", "--runs", RUNS]).await;
    println!("--- all-in-one (integr8s serve)\n{out}");
}
