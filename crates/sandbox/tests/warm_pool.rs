//! The warm pool: after the self-test every slot has a bubblewrap waiting, the first run uses
//! one of them, and dropping the executor leaves no bubblewrap child behind. Its own test
//! binary, so no other executor's processes are children of this process.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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

#[tokio::test]
async fn every_slot_is_warm_after_start_and_none_survives_the_executor() {
    let executor = LocalExecutor::start(SandboxConfig {
        uid_base: 300_000,
        max_concurrent: 2,
        ..SandboxConfig::default()
    })
    .await;
    assert!(executor.health().ready, "{:?}", executor.health());

    // Two slots per concurrent run, each with a bubblewrap waiting for its arguments.
    let warm = wait_for("four warm bubblewraps", || {
        let live = bwrap_children(false);
        (live.len() == 4).then_some(live)
    })
    .await;

    // The first run is served by one of them, not by a cold start.
    let marker = format!("itmark-warm-{}", std::process::id());
    let spec = RunSpec {
        execution_id: "warm".into(),
        lang: "test".into(),
        lang_version: String::new(),
        file_name: "main.sh".into(),
        script: format!("exec -a {marker} sleep 100\n"),
        command: vec!["bash".into(), "main.sh".into()],
        env: Vec::new(),
        limits: Default::default(),
        stdin: None,
    };
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
