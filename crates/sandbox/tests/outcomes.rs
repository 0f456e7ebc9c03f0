//! Outcome classification against real processes: real signals versus look-alike exit codes,
//! the CPU-time budget, and the per-run CPU weight.

mod common;

use std::time::Duration;

use integr8s_core::ports::executor::{Executor, RunControl, RunOutcome};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};
use tokio::sync::OnceCell;

use common::{bash, python, run};

#[tokio::test]
async fn exit_139_is_an_exit_code_not_a_signal() {
    let report = run(&bash("exit 139\n")).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Exited { code: 139 },
        "{report:?}"
    );
}

#[tokio::test]
async fn a_real_sigsegv_is_reported_as_signal_11() {
    let report = run(&bash("kill -SEGV $$\n")).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled { signal: 11 },
        "{report:?}"
    );
    let report = run(&python("import ctypes\nctypes.string_at(0)\n")).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled { signal: 11 },
        "{report:?}"
    );
}

#[tokio::test]
async fn abort_is_reported_as_signal_6() {
    let report = run(&python("import os\nos.abort()\n")).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled { signal: 6 },
        "{report:?}"
    );
}

static BUDGETED: OnceCell<LocalExecutor> = OnceCell::const_new();

async fn budgeted() -> &'static LocalExecutor {
    BUDGETED
        .get_or_init(|| async {
            LocalExecutor::start(SandboxConfig {
                // Slots of its own: two executors never share uids.
                uid_base: 360_000,
                cpu_time_limit: Some(Duration::from_millis(800)),
                ..SandboxConfig::default()
            })
            .await
        })
        .await
}

#[tokio::test]
async fn cpu_burner_in_two_processes_hits_the_cpu_time_budget() {
    let executor = budgeted().await;
    assert!(executor.health().ready, "{:?}", executor.health());
    let mut spec = python("import os\nos.fork()\nwhile True:\n    pass\n");
    spec.limits.timeout_seconds = 30;
    let report = executor.run(&spec, RunControl::default()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::CpuLimit, "{report:?}");
    let cpu = report.cpu_user + report.cpu_system;
    assert!(cpu >= Duration::from_millis(800), "{cpu:?}");
    assert!(report.wall_time < Duration::from_secs(20), "{report:?}");
}

#[tokio::test]
async fn sleeping_within_the_cpu_budget_is_fine() {
    let executor = budgeted().await;
    let report = executor
        .run(&bash("sleep 1.2\necho rested\n"), RunControl::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
}

#[tokio::test]
async fn each_run_gets_its_own_cpu_weight() {
    let m = common::marker("weight");
    let spec = bash(&format!("exec -a {m} sleep 3\n"));
    let running = tokio::spawn(async move { run(&spec).await });
    let started = std::time::Instant::now();
    let pid = loop {
        if let Some(pid) = common::host_pids_with(&m).first() {
            break *pid;
        }
        assert!(started.elapsed() < common::DEADLINE);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cpu_path = membership
        .lines()
        .find_map(|l| l.split_once(":cpu:").map(|(_, p)| p.to_owned()))
        .expect("the run is in a cpu cgroup");
    assert!(cpu_path.contains("integr8s-sandbox/"), "{cpu_path}");
    let shares =
        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{cpu_path}/cpu.shares")).unwrap();
    assert_eq!(shares.trim(), "1024");
    running.abort();
    common::wait_until_gone(&m).await;
}

/// Prints the benchmark figures (`cargo test --release -p integr8s-sandbox --test outcomes
/// bench -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn bench_sandbox_against_bare() {
    let executor = LocalExecutor::start(SandboxConfig {
        uid_base: 362_000,
        ..SandboxConfig::default()
    })
    .await;
    let report = integr8s_sandbox::bench_report(&executor, "/usr/bin/python3", 40)
        .await
        .unwrap();
    println!("{report}");
}
