//! [`LocalExecutor`]: runs one spec through bubblewrap inside a per-run cgroup.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use integr8s_core::ports::executor::{
    ExecError, Executor, ExecutorHealth, RunControl, RunOutcome, RunReport, RunSpec,
};
use tokio::sync::Semaphore;

use crate::args::{self, BwrapArgs, RootEntry};
use crate::cgroup::{CgroupLayout, CgroupLimits, CgroupStats, RunCgroup};
use crate::classify::{classify, ExitKind};
use crate::config::SandboxConfig;
use crate::supervise::{supervise, Budget};
use crate::sys::{self, ChildSetup};

/// How runs are isolated, decided by the self-test.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Namespaces via bubblewrap, limits and accounting via cgroups.
    Cgroup {
        bwrap: PathBuf,
        layout: CgroupLayout,
    },
    /// Namespaces via bubblewrap, limits via rlimits only.
    Rlimits { bwrap: PathBuf },
    /// Refuse to run anything.
    Unavailable { reason: String },
}

impl Mode {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Mode::Cgroup {
                layout: CgroupLayout::V1 { .. },
                ..
            } => "bubblewrap+cgroup-v1",
            Mode::Cgroup {
                layout: CgroupLayout::V2 { .. },
                ..
            } => "bubblewrap+cgroup-v2",
            Mode::Rlimits { .. } => "bubblewrap+rlimits",
            Mode::Unavailable { .. } => "unavailable",
        }
    }
}

pub(crate) struct State {
    pub mode: Mode,
    pub health: ExecutorHealth,
}

/// The local sandbox executor. Cheap to share behind an `Arc`; runs at most
/// `max_concurrent` scripts at once, each as its own unprivileged host uid.
pub struct LocalExecutor {
    pub(crate) config: SandboxConfig,
    pub(crate) root_entries: Vec<RootEntry>,
    pub(crate) etc_binds: Vec<PathBuf>,
    pub(crate) state: RwLock<State>,
    /// Whether we can (and must) switch to per-slot host ids: true when running as root.
    pub(crate) switch_ids: bool,
    /// The init shim, bound into every sandbox; `Err` says why it is missing.
    init: Result<crate::init::InstalledInit, String>,
    slots: Arc<Semaphore>,
    free_slots: Mutex<Vec<u32>>,
    counter: AtomicU64,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("config", &self.config)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

/// Kills and removes a run's cgroup if the run is abandoned (its future dropped).
struct RunGuard {
    cgroup: Option<Arc<RunCgroup>>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            sys::kill_group(pid);
            sys::kill_pid(pid);
        }
        if let Some(cgroup) = self.cgroup.take() {
            // Blocking sweeps do not belong on an async worker thread.
            let spawned = std::thread::Builder::new()
                .name("sandbox-cleanup".into())
                .spawn(move || {
                    cgroup.kill_all_blocking();
                    cgroup.remove_blocking();
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the sandbox cleanup thread");
            }
        }
    }
}

/// Gives a slot back when the run ends, however it ends.
struct SlotGuard<'a> {
    executor: &'a LocalExecutor,
    slot: u32,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.executor
            .free_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.slot);
    }
}

fn internal(context: &str, e: impl std::fmt::Display) -> ExecError {
    ExecError::Internal(format!("{context}: {e}"))
}

impl LocalExecutor {
    /// Builds the executor without testing the sandbox; [`LocalExecutor::health`] reports
    /// "unavailable" and runs are refused until [`LocalExecutor::self_test`] succeeded.
    pub fn new(config: SandboxConfig) -> Self {
        let max = config.max_concurrent.max(1);
        let slots = (0..max as u32).rev().collect();
        Self {
            root_entries: args::root_entries(),
            etc_binds: args::etc_binds(),
            init: crate::init::InstalledInit::install(&std::env::temp_dir())
                .map_err(|e| format!("cannot install the sandbox init shim: {e}")),
            switch_ids: sys::effective_uid() == 0,
            slots: Arc::new(Semaphore::new(max)),
            free_slots: Mutex::new(slots),
            counter: AtomicU64::new(0),
            state: RwLock::new(State {
                mode: Mode::Unavailable {
                    reason: "the sandbox self-test has not run".into(),
                },
                health: ExecutorHealth {
                    ready: false,
                    mode: "unavailable".into(),
                    detail: Some("the sandbox self-test has not run".into()),
                },
            }),
            config,
        }
    }

    /// Builds the executor and runs the self-test; see [`LocalExecutor::health`] for the
    /// result. Never fails: an unusable host yields a not-ready executor that refuses runs.
    pub async fn start(config: SandboxConfig) -> Self {
        let executor = Self::new(config);
        executor.self_test().await;
        executor
    }

    pub(crate) fn mode(&self) -> Mode {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .mode
            .clone()
    }

    /// Host uid and gid of a slot.
    fn ids(&self, slot: u32) -> Option<(u32, u32)> {
        self.switch_ids.then(|| {
            let id = self.config.uid_base.saturating_add(slot);
            (id, id)
        })
    }

    pub(crate) async fn run_in_mode(
        &self,
        mode: &Mode,
        spec: &RunSpec,
        control: &RunControl,
    ) -> Result<RunReport, ExecError> {
        let (bwrap, layout) = match mode {
            Mode::Cgroup { bwrap, layout } => (bwrap, Some(layout)),
            Mode::Rlimits { bwrap } => (bwrap, None),
            Mode::Unavailable { reason } => return Err(ExecError::Unavailable(reason.clone())),
        };
        validate(spec)?;
        let permit = tokio::select! {
            permit = self.slots.clone().acquire_owned() => {
                permit.map_err(|e| internal("slot semaphore closed", e))?
            }
            () = control.cancel.cancelled() => return Ok(cancelled_before_start()),
        };
        let slot = self
            .free_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .ok_or_else(|| ExecError::Internal("no free sandbox slot".into()))?;
        let slot_guard = SlotGuard {
            executor: self,
            slot,
        };
        let report = self.run_slot(bwrap, layout, slot, spec, control).await;
        // The slot must be free again before the permit lets the next run look for it.
        drop(slot_guard);
        drop(permit);
        report
    }

    async fn run_slot(
        &self,
        bwrap: &PathBuf,
        layout: Option<&CgroupLayout>,
        slot: u32,
        spec: &RunSpec,
        control: &RunControl,
    ) -> Result<RunReport, ExecError> {
        let limits = &spec.limits;
        let script = sys::memfd_with(c"script", spec.script.as_bytes())
            .map_err(|e| internal("cannot stage the script", e))?;
        let seccomp: Vec<OwnedFd> = crate::seccomp::programs()
            .map_err(|e| internal("seccomp", e))?
            .iter()
            .map(|p| sys::memfd_with(c"seccomp", p))
            .collect::<Result<_, _>>()
            .map_err(|e| internal("cannot stage the seccomp filter", e))?;
        let seccomp_fds: Vec<i32> = seccomp.iter().map(AsRawFd::as_raw_fd).collect();
        let init_path = match &self.init {
            Ok(init) => init.path(),
            Err(e) => return Err(ExecError::Unavailable(e.clone())),
        };
        let (status_read, status_write) =
            sys::pipe().map_err(|e| internal("cannot create the status pipe", e))?;

        let cgroup = match layout {
            Some(layout) => {
                let name = format!(
                    "run-{}-{}",
                    std::process::id(),
                    self.counter.fetch_add(1, Ordering::Relaxed)
                );
                let cgroup_limits = CgroupLimits {
                    memory_bytes: limits.memory_bytes,
                    max_processes: limits.max_processes,
                    cpu_weight: self.config.cpu_weight,
                };
                Some(Arc::new(
                    RunCgroup::create(layout, &name, cgroup_limits)
                        .map_err(|e| internal("cannot create the run cgroup", e))?,
                ))
            }
            None => None,
        };
        let mut guard = RunGuard {
            cgroup: cgroup.clone(),
            pid: None,
            armed: true,
        };

        let argv = BwrapArgs {
            config: &self.config,
            root_entries: &self.root_entries,
            etc_binds: &self.etc_binds,
            env: &spec.env,
            file_name: &spec.file_name,
            script_fd: script.as_raw_fd(),
            seccomp_fds: &seccomp_fds,
            init_path,
            status_fd: status_write.as_raw_fd(),
            command: &spec.command,
        }
        .build();
        let ids = self.ids(slot);
        let fallback = cgroup.is_none();
        let mut inherit = seccomp_fds.clone();
        inherit.extend([script.as_raw_fd(), status_write.as_raw_fd()]);
        let setup = ChildSetup {
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default(),
            inherit,
            ids,
            parent_pid: std::process::id() as i32,
            rlimit_as: (fallback && self.config.rlimit_as_fallback).then_some(limits.memory_bytes),
            rlimit_nproc: (fallback && ids.is_some()).then_some(limits.max_processes),
            rlimit_cpu: Some(limits.timeout_seconds.saturating_add(1)),
        };
        let mut cmd = tokio::process::Command::new(bwrap);
        cmd.args(&argv)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        sys::install_child_setup(&mut cmd, setup);

        let started = Instant::now();
        let spawned = cmd.spawn();
        // The child has its own copies now (or failed); close ours.
        drop(script);
        drop(seccomp);
        drop(status_write);
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                guard.armed = false;
                if let Some(cgroup) = &cgroup {
                    cgroup.remove().await;
                }
                return Err(internal("cannot start bubblewrap", e));
            }
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        guard.pid = pid;

        let timeout = Duration::from_secs(limits.timeout_seconds.max(1));
        let cap = usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX);
        let supervised = supervise(
            &mut child,
            pid,
            cgroup.as_deref(),
            Budget {
                wall: timeout,
                cpu: self.config.cpu_time_limit,
                output_bytes: cap,
            },
            &control.cancel,
        )
        .await;
        let wall_time = started.elapsed();
        // From here on bubblewrap is reaped (or supervision failed and the guard cleans up).
        guard.pid = None;
        let supervised = supervised.map_err(|e| internal("supervising the run failed", e))?;

        let stats = match &cgroup {
            Some(cgroup) => {
                cgroup.kill_all().await;
                let stats = cgroup.stats();
                cgroup.remove().await;
                stats
            }
            None => CgroupStats::default(),
        };
        guard.armed = false;

        let init_status = crate::init::read_status(status_read);
        // The shim knows the real signal; bubblewrap only reports 128+N. Without a report
        // (the shim itself was killed) bubblewrap's status is all there is.
        let exit = init_status
            .exit
            .unwrap_or_else(|| ExitKind::from(supervised.status));
        let outcome = classify(supervised.stop, exit, stats.oom_kills);
        let capture = supervised.capture;
        Ok(RunReport {
            outcome,
            output_truncated: capture.truncated(),
            stdout: String::from_utf8_lossy(&capture.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&capture.stderr).into_owned(),
            wall_time,
            cpu_user: stats.cpu_user,
            cpu_system: stats.cpu_system,
            peak_memory_bytes: stats.peak_memory_bytes,
            pids_limit_hit: stats.pids_max_hits > 0,
        })
    }
}

fn validate(spec: &RunSpec) -> Result<(), ExecError> {
    if !args::valid_file_name(&spec.file_name) {
        return Err(ExecError::Internal(format!(
            "invalid script file name {:?}",
            spec.file_name
        )));
    }
    if spec.command.is_empty() {
        return Err(ExecError::Internal("empty command".into()));
    }
    if let Some((key, _)) = spec.env.iter().find(|(k, _)| !args::valid_env_name(k)) {
        return Err(ExecError::Internal(format!(
            "invalid environment name {key:?}"
        )));
    }
    let has_nul = |s: &str| s.contains('\0');
    if spec.command.iter().any(|c| has_nul(c)) || spec.env.iter().any(|(_, v)| has_nul(v)) {
        return Err(ExecError::Internal(
            "NUL byte in command or environment".into(),
        ));
    }
    // CString conversion is what the spawn does; fail early with a clear message instead.
    CString::new(spec.file_name.as_bytes()).map_err(|e| internal("file name", e))?;
    Ok(())
}

fn cancelled_before_start() -> RunReport {
    RunReport {
        outcome: RunOutcome::Cancelled,
        stdout: String::new(),
        stderr: String::new(),
        output_truncated: false,
        wall_time: Duration::ZERO,
        cpu_user: Duration::ZERO,
        cpu_system: Duration::ZERO,
        peak_memory_bytes: 0,
        pids_limit_hit: false,
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn run(&self, spec: &RunSpec, control: RunControl) -> Result<RunReport, ExecError> {
        let mode = self.mode();
        self.run_in_mode(&mode, spec, &control).await
    }

    fn health(&self) -> ExecutorHealth {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .health
            .clone()
    }
}
