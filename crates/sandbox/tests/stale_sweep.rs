//! A service killed without a chance to clean up can leave a sandbox process in one of its
//! run cgroups (e.g. one caught inside bubblewrap's start-up). The next executor to start in
//! the same parent cgroup kills it and removes the cgroup. Its own test binary: the sweep runs
//! once per process.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integr8s_core::ports::executor::Executor;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

/// The parent of the executor's run cgroups in the pids hierarchy (cgroup v1), or in the
/// unified hierarchy (v2).
fn run_cgroup_parent() -> PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let v1 = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "pids")
            .then(|| PathBuf::from(format!("/sys/fs/cgroup/pids{path}")))
    });
    let base = v1.unwrap_or_else(|| {
        let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        PathBuf::from(format!("/sys/fs/cgroup{path}"))
    });
    base.join("integr8s-sandbox")
}

fn pid_with(marker: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(marker)
            .then_some(pid)
    })
}

#[tokio::test]
async fn the_next_start_kills_what_a_dead_service_left_in_its_run_cgroups() {
    let parent = run_cgroup_parent();
    std::fs::create_dir_all(&parent).unwrap();
    // A service pid that no longer exists.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = parent.join(format!("run-{dead}-0"));
    std::fs::create_dir(&stale).unwrap();
    let marker = format!("itmark-stale-{}", std::process::id());
    let mut leftover = Command::new("bash")
        .args(["-c", &format!("exec -a {marker} sleep 300")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(stale.join("cgroup.procs"), leftover.id().to_string()).unwrap();

    let executor = LocalExecutor::start(SandboxConfig {
        uid_base: 330_000,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await;
    let ready = executor.health().ready;
    let started = Instant::now();
    while (pid_with(&marker).is_some() || stale.exists())
        && started.elapsed() < Duration::from_secs(20)
    {
        // The sleeper is our child: reap it once killed, or it stays a zombie with its marker.
        let _ = leftover.try_wait();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let survived = leftover.try_wait().unwrap().is_none();
    if survived {
        let _ = leftover.kill();
        let _ = leftover.wait();
    }
    let health = executor.health();
    drop(executor);
    assert!(ready, "{health:?}");
    assert!(!survived, "the leftover process was not killed");
    assert!(
        !stale.exists(),
        "the stale cgroup {} was not removed",
        stale.display()
    );
}
