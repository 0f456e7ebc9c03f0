//! The warm pool: after the self-test every slot has a bubblewrap waiting, the first run uses
//! one of them, and dropping the executor leaves no bubblewrap child behind. Its own test
//! binary, so no other executor's processes are children of this process.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use integr8s_core::execution::RunLimits;
use integr8s_core::ports::executor::{Executor, RunControl, RunOutcome, RunSpec};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

/// Generous bound so a broken test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

/// `(name, parent pid, state)` from `/proc/<pid>/status`.
fn status(pid: i32) -> Option<(String, i32, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
    };
    Some((
        field("Name:")?,
        field("PPid:")?.parse().ok()?,
        field("State:")?.chars().next()?.to_string(),
    ))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Bubblewrap processes whose parent is this test process; zombies only when `zombies`.
fn bwrap_children(zombies: bool) -> BTreeSet<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|pid| {
            status(*pid).is_some_and(|(name, ppid, state)| {
                name == "bwrap" && ppid == me && (zombies || state != "Z")
            })
        })
        .collect()
}

/// The ancestor of `pid` that is a direct child of this process.
fn our_child_above(mut pid: i32) -> Option<i32> {
    let me = std::process::id() as i32;
    for _ in 0..64 {
        let (_, ppid, _) = status(pid)?;
        if ppid == me {
            return Some(pid);
        }
        pid = ppid;
    }
    None
}

fn host_pid_with(marker: &str) -> Option<i32> {
    all_pids().into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    })
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An executor of `max_concurrent` runs whose slots use the uids from `uid_base`.
async fn ready_executor(uid_base: u32, max_concurrent: usize) -> LocalExecutor {
    let executor = LocalExecutor::start(SandboxConfig {
        uid_base,
        max_concurrent,
        ..SandboxConfig::default()
    })
    .await;
    assert!(executor.health().ready, "{:?}", executor.health());
    executor
}

/// A bash script run as `main.sh`.
fn bash_spec(id: &str, script: String, limits: RunLimits) -> RunSpec {
    RunSpec {
        execution_id: id.into(),
        lang: "test".into(),
        lang_version: String::new(),
        file_name: "main.sh".into(),
        script,
        command: vec!["bash".into(), "main.sh".into()],
        env: Vec::new(),
        limits,
        stdin: None,
        prestart: None,
    }
}

#[tokio::test]
async fn every_slot_is_warm_after_start_and_none_survives_the_executor() {
    let executor = ready_executor(300_000, 2).await;

    // Two slots per concurrent run, each with a bubblewrap waiting for its arguments.
    let warm = wait_for("four warm bubblewraps", || {
        let live = bwrap_children(false);
        (live.len() == 4).then_some(live)
    })
    .await;

    // The first run is served by one of them, not by a cold start.
    let marker = format!("itmark-warm-{}", std::process::id());
    let spec = bash_spec(
        "warm",
        format!("exec -a {marker} sleep 100\n"),
        RunLimits::default(),
    );
    let control = RunControl::default();
    let cancel = control.cancel.clone();
    let watcher = async {
        let script = wait_for("the script", || host_pid_with(&marker)).await;
        let launcher = our_child_above(script);
        cancel.cancel();
        launcher
    };
    let (report, launcher) = tokio::join!(
        tokio::time::timeout(DEADLINE, executor.run(&spec, control.clone())),
        watcher
    );
    let report = report.expect("deadline").expect("run");
    assert_eq!(report.outcome, RunOutcome::Cancelled, "{report:?}");
    let launcher = launcher.expect("the script descends from a bubblewrap of ours");
    assert!(
        warm.contains(&launcher),
        "run used {launcher}, warm were {warm:?}"
    );

    drop(executor);
    wait_for("every bubblewrap child to be gone", || {
        bwrap_children(true).is_empty().then_some(())
    })
    .await;
}

/// Real uid of `pid`.
fn uid(pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Every run of a slot reuses its cgroup, so anything a run leaves behind (a process, or an
/// exited one nobody reaps, which still holds a share of the process limit) piles up there.
/// Many runs under a tight process limit must all succeed, and no sandbox process of the
/// slots' uids may be left as a zombie for the host's init to reap.
#[tokio::test]
async fn repeated_runs_leave_no_zombies_and_keep_the_process_limit() {
    const UID_BASE: u32 = 310_000;
    let executor = ready_executor(UID_BASE, 1).await;
    // A background child the script does not wait for, orphaned when the script exits.
    let spec = bash_spec(
        "repeat",
        "sleep 30 &\necho ok\n".into(),
        RunLimits {
            max_processes: 6,
            ..Default::default()
        },
    );
    for i in 0..30 {
        let report = tokio::time::timeout(DEADLINE, executor.run(&spec, RunControl::default()))
            .await
            .expect("deadline")
            .expect("run");
        assert_eq!(
            report.outcome,
            RunOutcome::Exited { code: 0 },
            "run {i}: {report:?}"
        );
        assert_eq!(report.stdout, "ok\n", "run {i}: {report:?}");
    }
    // Killed runs too: a timeout kills the sandbox from outside.
    let sleeper = RunSpec {
        script: "sleep 30 &\nsleep 30\n".into(),
        limits: RunLimits {
            timeout_seconds: 1,
            ..spec.limits
        },
        ..spec.clone()
    };
    for i in 0..2 {
        let report = tokio::time::timeout(DEADLINE, executor.run(&sleeper, RunControl::default()))
            .await
            .expect("deadline")
            .expect("run");
        assert_eq!(report.outcome, RunOutcome::TimedOut, "run {i}: {report:?}");
    }

    // Every process of the slots' uids is a prepared sandbox: a bubblewrap child of ours or
    // a process below one. An orphan (re-parented to the host's init) is a leak.
    let slot_uids = UID_BASE..UID_BASE + 2;
    let me = std::process::id() as i32;
    let ours: Vec<i32> = all_pids()
        .into_iter()
        .filter(|pid| uid(*pid).is_some_and(|u| slot_uids.contains(&u)))
        .collect();
    let orphans: Vec<_> = ours
        .iter()
        .filter_map(|pid| status(*pid).map(|st| (*pid, st)))
        .filter(|(_, (_, ppid, _))| *ppid != me && !ours.contains(ppid))
        .collect();
    assert!(
        orphans.is_empty(),
        "orphaned sandbox processes: {orphans:?}"
    );

    // Once the executor is gone nothing of its slots' uids may remain, not even a zombie
    // handed to the host's init (which may never reap it).
    drop(executor);
    let leftovers = || -> Vec<(i32, String)> {
        all_pids()
            .into_iter()
            .filter(|pid| uid(*pid).is_some_and(|u| slot_uids.contains(&u)))
            .filter_map(|pid| {
                status(pid).map(|(name, ppid, state)| (pid, format!("{name} ppid {ppid} {state}")))
            })
            .collect()
    };
    let start = Instant::now();
    while !leftovers().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(leftovers().is_empty(), "left behind: {:?}", leftovers());
}

/// Set in the helper process of [`a_dying_service_takes_its_sandboxes_with_it`].
const HOLDER_ENV: &str = "INTEGR8S_TEST_HOLD_RUN";

/// In the helper process of [`a_dying_service_takes_its_sandboxes_with_it`]: starts an
/// executor, runs a script that sleeps under `marker`, and never returns.
async fn hold_a_sleeping_run(marker: &str) {
    let executor = ready_executor(320_000, 1).await;
    let spec = bash_spec(
        "held",
        format!("(exec -a {marker}-child sleep 300) &\nexec -a {marker} sleep 300\n"),
        RunLimits {
            timeout_seconds: 300,
            ..Default::default()
        },
    );
    let _ = executor.run(&spec, RunControl::default()).await;
}

/// When the service is killed (no chance to clean up), its sandboxes die with it: the
/// parent-death signal reaches bubblewrap (armed after the uid switch, which would clear
/// it), and bubblewrap's death takes the sandbox's pid namespace down.
#[tokio::test]
async fn a_dying_service_takes_its_sandboxes_with_it() {
    // The test runs itself again as the service to kill: that copy holds a run and is killed.
    if let Ok(marker) = std::env::var(HOLDER_ENV) {
        hold_a_sleeping_run(&marker).await;
        panic!("the held run ended before the service was killed");
    }
    let marker = format!("itmark-held-{}", std::process::id());
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_dying_service_takes_its_sandboxes_with_it",
            "--nocapture",
        ])
        .env(HOLDER_ENV, &marker)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child_marker = format!("{marker}-child");
    let started = Instant::now();
    while (host_pid_with(&marker).is_none() || host_pid_with(&child_marker).is_none())
        && started.elapsed() < DEADLINE
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        host_pid_with(&marker).is_some(),
        "the held run never started"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();
    while (host_pid_with(&marker).is_some() || host_pid_with(&child_marker).is_some())
        && killed.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        host_pid_with(&marker).is_none() && host_pid_with(&child_marker).is_none(),
        "the script outlived the service"
    );
}
