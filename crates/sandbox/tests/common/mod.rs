//! Helpers shared by the sandbox test targets: one executor per test binary, specs, and
//! host-side process checks.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use integr8s_core::execution::RunLimits;
use integr8s_core::ports::executor::{Executor, RunControl, RunReport, RunSpec};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};
use tokio::sync::OnceCell;

/// Apart from the default range (100000) of a server that may run on the same host: slot uids
/// are claimed per host, and a test executor must not depend on what else runs there.
pub const UID_BASE: u32 = 380_000;
/// Generous bound so a broken test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(120);

static EXECUTOR: OnceCell<LocalExecutor> = OnceCell::const_new();

pub async fn executor() -> &'static LocalExecutor {
    EXECUTOR
        .get_or_init(|| {
            ready_executor(SandboxConfig {
                uid_base: UID_BASE,
                max_concurrent: 4,
                ..SandboxConfig::default()
            })
        })
        .await
}

/// An executor of its own, asserted ready.
pub async fn ready_executor(config: SandboxConfig) -> LocalExecutor {
    let executor = LocalExecutor::start(config).await;
    assert!(executor.health().ready, "{:?}", executor.health());
    executor
}

pub fn spec(file_name: &str, script: &str, command: &[&str]) -> RunSpec {
    RunSpec {
        execution_id: format!("test-{file_name}"),
        lang: "test".into(),
        lang_version: String::new(),
        file_name: file_name.into(),
        script: script.into(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        limits: RunLimits {
            timeout_seconds: 30,
            ..RunLimits::default()
        },
        stdin: None,
        prestart: None,
    }
}

pub fn python(script: &str) -> RunSpec {
    spec("main.py", script, &["/usr/bin/python3", "main.py"])
}

pub fn bash(script: &str) -> RunSpec {
    spec("main.sh", script, &["/bin/bash", "main.sh"])
}

pub async fn run(spec: &RunSpec) -> RunReport {
    run_with(spec, RunControl::default()).await
}

pub async fn run_with(spec: &RunSpec, control: RunControl) -> RunReport {
    run_on(executor().await, spec, control).await
}

/// Runs `spec` on `executor`, failing the test if it does not finish within the deadline.
pub async fn run_on(executor: &LocalExecutor, spec: &RunSpec, control: RunControl) -> RunReport {
    tokio::time::timeout(DEADLINE, executor.run(spec, control))
        .await
        .expect("run did not finish within the test deadline")
        .expect("run failed")
}

pub fn marker(name: &str) -> String {
    format!("itmark-{name}-{}", std::process::id())
}

/// Every host pid.
pub fn host_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `(comm, parent pid, uid)` of a host process.
pub fn process(pid: i32) -> Option<(String, i32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    Some((
        field("Name:")?.to_owned(),
        field("PPid:")?.parse().ok()?,
        field("Uid:")?.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Host pids whose command line mentions `marker`.
pub fn host_pids_with(marker: &str) -> Vec<i32> {
    host_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

pub async fn wait_until_gone(marker: &str) {
    let start = Instant::now();
    while !host_pids_with(marker).is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "processes with {marker} survived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{}-{}", marker(name), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
