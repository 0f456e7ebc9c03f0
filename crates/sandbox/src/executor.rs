//! [`LocalExecutor`]: runs one spec in a slot's sandbox (bubblewrap and the init shim) inside
//! the slot's cgroup.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use integr8s_core::ports::executor::{
    ExecError, Executor, ExecutorHealth, RunControl, RunOutcome, RunProgress, RunReport, RunSpec,
};
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::counter;
use tokio::sync::Semaphore;

use crate::args::{self, BwrapArgs};
use crate::cgroup::{Baseline, CgroupLayout, CgroupLimits, RunCgroup};
use crate::classify::{classify, ExitKind, Stop};
use crate::config::SandboxConfig;
use crate::init::job::{Job, Rlimit};
use crate::init::InitStatus;
use crate::launch::LaunchKey;
use crate::pool::{SlotLease, SlotPool, Spawner};
use crate::slot_checks::{holds_only_the_sandbox, interpreter_in_the_way, no_memory_left};
use crate::supervise::{kill_tree, supervise, Budget, Supervised};
use crate::sys::{self, ChildSetup};
use crate::uid_claim::{self, UidClaim};

/// Processes of the sandbox itself that count against a run's process limit (the cgroup's, or
/// `RLIMIT_NPROC` of the slot's uid): bubblewrap, the shim and the run init. A run may start
/// as many processes as it asked for on top of them.
const SANDBOX_PROCESSES: u64 = 3;

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

pub(crate) struct State {
    pub mode: Mode,
    pub health: ExecutorHealth,
}

/// The local sandbox executor. Cheap to share behind an `Arc`; runs at most
/// `max_concurrent` scripts at once, each as its own unprivileged host uid.
pub struct LocalExecutor {
    pub(crate) config: SandboxConfig,
    pub(crate) state: RwLock<State>,
    /// Whether we can (and must) switch to per-slot host ids: true when running as root.
    pub(crate) switch_ids: bool,
    /// The init shim, bound into every sandbox; `Err` says why it is missing.
    _init: Result<crate::init::InitMemfd, String>,
    /// What every bubblewrap command line is built from (needs the shim).
    bwrap_args: Result<Arc<BwrapArgs>, String>,
    /// At most `max_concurrent` runs at once.
    runs: Arc<Semaphore>,
    /// Twice as many slots as runs, so a slot whose run was killed can start a new sandbox
    /// while another slot serves the next run.
    pool: Arc<SlotPool>,
    spawner: Result<Spawner, String>,
    /// The slot uids, held for the executor's life (`None` when not switching ids); `Err`
    /// says why they could not be claimed, and nothing runs.
    uid_claim: Result<Option<UidClaim>, String>,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("config", &self.config)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

/// Takes a run's cgroup away from its slot (killing and removing it in the background) if
/// the run is abandoned, its future dropped. The bubblewrap process itself is killed by
/// dropping its [`Running`].
struct RunGuard<'a> {
    pool: &'a SlotPool,
    slot: u32,
    cgroup: Option<Arc<RunCgroup>>,
    armed: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if let (true, Some(cgroup)) = (self.armed, self.cgroup.take()) {
            self.pool.retire(self.slot, cgroup);
        }
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
        let slot_count = u32::try_from(max.saturating_mul(2)).unwrap_or(u32::MAX);
        let init = crate::init::InitMemfd::create()
            .map_err(|e| format!("cannot load the sandbox init shim: {e}"));
        let bwrap_args = init.as_ref().map_err(Clone::clone).map(|init| {
            Arc::new(BwrapArgs {
                config: config.clone(),
                root_entries: args::root_entries(),
                etc_binds: args::etc_binds(),
                init_fd: init.raw_fd(),
            })
        });
        let switch_ids = sys::effective_uid() == 0;
        let uid_claim = if switch_ids && config.uid_base != 0 {
            uid_claim::claim(&config.uid_claim_dir, config.uid_base, slot_count)
                .map(Some)
                .map_err(|e| e.to_string())
        } else {
            Ok(None)
        };
        Self {
            _init: init,
            bwrap_args,
            switch_ids,
            uid_claim,
            runs: Arc::new(Semaphore::new(max)),
            pool: SlotPool::new(slot_count),
            spawner: Spawner::start().map_err(|e| format!("cannot start the spawner thread: {e}")),
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

    /// Why the slot uids could not be claimed: another integr8s process on this host uses
    /// some of them. A service must not start then (the message names the setting to change).
    pub fn uid_claim_error(&self) -> Option<&str> {
        self.uid_claim.as_ref().err().map(String::as_str)
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

    /// How a sandbox for `slot` is prepared: the key a prepared one must match, and the setup
    /// of the child before exec (cgroup fds still empty). Nothing of the run is in it: the
    /// run reaches the sandbox as a job (see [`Self::job`]).
    fn launch_plan(&self, bwrap: &Path, cgroup: bool, slot: u32) -> (LaunchKey, ChildSetup) {
        let ids = self.ids(slot);
        let key = LaunchKey {
            bwrap: bwrap.to_path_buf(),
            ids,
            cgroup,
        };
        let setup = ChildSetup {
            cgroup_procs: Vec::new(),
            ids,
            parent_pid: std::process::id() as i32,
        };
        (key, setup)
    }

    /// The job the init shim runs: the script, its command and environment, and the rlimits
    /// of the script's process (a CPU-time backstop past the timeout; without cgroups also
    /// the memory and process caps).
    fn job(&self, spec: &RunSpec, cgroup: bool, ids: Option<(u32, u32)>) -> Job {
        let limits = &spec.limits;
        let mut rlimits = vec![Rlimit::Cpu(limits.timeout_seconds.saturating_add(1))];
        if !cgroup {
            if self.config.rlimit_as_fallback {
                rlimits.push(Rlimit::AddressSpace(limits.memory_bytes));
            }
            if ids.is_some() {
                rlimits.push(Rlimit::Processes(
                    limits.max_processes.saturating_add(SANDBOX_PROCESSES),
                ));
            }
        }
        Job {
            file_name: spec.file_name.as_bytes().to_vec(),
            script: spec.script.as_bytes().to_vec(),
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            argv: spec.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
            rlimits,
            prestart: match (&spec.prestart, self.config.prestart) {
                (Some(prestart), true) => prestart.iter().map(|a| a.as_bytes().to_vec()).collect(),
                _ => Vec::new(),
            },
        }
    }

    /// Starts a sandbox in every slot that has none, so the first runs do not pay the cold
    /// start. Returns once every slot has been
    /// handed to the spawner; the processes start in the background. A no-op when not ready.
    pub(crate) async fn warm_slots(&self) {
        let (bwrap, layout) = match self.mode() {
            Mode::Cgroup { bwrap, layout } => (bwrap, Some(layout)),
            Mode::Rlimits { bwrap } => (bwrap, None),
            Mode::Unavailable { .. } => return,
        };
        let (Ok(spawner), Ok(bwrap_args)) = (&self.spawner, &self.bwrap_args) else {
            return;
        };
        // Holding every lease at once makes each slot come up exactly once.
        let mut leases = Vec::with_capacity(self.pool.slot_count());
        for _ in 0..self.pool.slot_count() {
            match self.pool.acquire().await {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot warm the sandbox slots");
                    return;
                }
            }
        }
        for lease in leases {
            let (key, setup) = self.launch_plan(&bwrap, layout.is_some(), lease.slot);
            spawner.refill(lease, layout.clone(), key, setup, bwrap_args.clone());
        }
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
        let (permit, lease) = tokio::select! {
            acquired = async {
                let permit = self.runs.clone().acquire_owned().await?;
                Ok::<_, tokio::sync::AcquireError>((permit, self.pool.acquire().await?))
            } => acquired.map_err(|e| internal("slot semaphore closed", e))?,
            () = control.cancel.cancelled() => return Ok(cancelled_before_start()),
        };
        control.report(RunProgress::Placed {
            place: slot_name(lease.slot),
        });
        let report = self.run_slot(bwrap, layout, lease, spec, control).await;
        drop(permit);
        report
    }

    async fn run_slot(
        &self,
        bwrap: &Path,
        layout: Option<&CgroupLayout>,
        lease: SlotLease,
        spec: &RunSpec,
        control: &RunControl,
    ) -> Result<RunReport, ExecError> {
        let limits = &spec.limits;
        let slot = lease.slot;
        let spawner = self
            .spawner
            .as_ref()
            .map_err(|e| ExecError::Unavailable(e.clone()))?;
        let bwrap_args = self
            .bwrap_args
            .as_ref()
            .map_err(|e| ExecError::Unavailable(e.clone()))?;
        let cgroup = match layout {
            Some(layout) => Some(
                self.pool
                    .cgroup(slot, layout)
                    .map_err(|e| internal("cannot create the run cgroup", e))?,
            ),
            None => None,
        };
        let mut guard = RunGuard {
            pool: &self.pool,
            slot,
            cgroup: cgroup.clone(),
            armed: true,
        };
        let (key, setup) = self.launch_plan(bwrap, cgroup.is_some(), slot);

        // A sandbox prepared for this slot the same way is used; anything else is dropped
        // (killed) and a new one started. A sandbox that dies before it takes the run (killed
        // while it waited) is replaced once: nothing of the run has started yet.
        let job = self.job(spec, cgroup.is_some(), key.ids);
        // What the slot's next run init starts ahead, should this run end cleanly: this run's
        // interpreter, for a run like this one.
        let next_prestart: Option<Arc<[u8]>> = (!job.prestart.is_empty()).then(|| {
            Job {
                script: Vec::new(),
                ..job.clone()
            }
            .encode()
            .into()
        });
        let warm = self.pool.state(slot).warm.take();
        let mut warm = warm.filter(|w| w.key == key && w.alive());
        if let (Some(waiting), Some(cgroup)) = (&warm, &cgroup) {
            if interpreter_in_the_way(waiting, next_prestart.as_ref(), cgroup, limits.memory_bytes)
            {
                // Dropping it kills it; nothing of it may count against this run.
                warm = None;
                cgroup.kill_all().await;
            }
        }
        let job = job.encode();
        let stdin = spec.stdin.as_deref().unwrap_or_default().as_bytes();
        let mut attempts = 0;
        let mut reported_start = false;
        let (mut child, supervised, wall_time, baseline) = loop {
            attempts += 1;
            if attempts > 1 {
                // The failed attempt left the run's limits on the cgroup; the new sandbox
                // starts under the between-runs ones.
                if let Some(cgroup) = &cgroup {
                    cgroup.set_idle_limits();
                }
            }
            let launch = match warm.take() {
                Some(warm) => warm,
                None => {
                    let mut cold = setup.clone();
                    cold.cgroup_procs = cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default();
                    spawner
                        .spawn(key.clone(), cold, bwrap_args.clone())
                        .await
                        .map_err(|e| internal("cannot start bubblewrap", e))?
                }
            };
            let baseline = match &cgroup {
                Some(cgroup) => {
                    let applied = cgroup.apply_limits(CgroupLimits {
                        memory_bytes: limits.memory_bytes,
                        max_processes: limits.max_processes.saturating_add(SANDBOX_PROCESSES),
                        cpu_weight: self.config.cpu_weight,
                    });
                    match applied {
                        Ok(()) => cgroup.start_accounting(),
                        Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                            // Nothing ran: the sandbox waits for the slot's next run.
                            guard.armed = false;
                            self.pool.park(lease, launch);
                            return Ok(too_little_memory(&e, cgroup.memory_usage()));
                        }
                        Err(e) => return Err(internal("cannot set the run cgroup limits", e)),
                    }
                }
                None => Baseline::default(),
            };
            let started = Instant::now();
            let mut child = match launch.release(&job, stdin) {
                Ok(child) => child,
                Err(e) if attempts == 1 => {
                    tracing::debug!(error = %e, "a waiting sandbox was gone; starting a new one");
                    continue;
                }
                Err(e) => return Err(internal("cannot start the sandbox", e)),
            };
            if !std::mem::replace(&mut reported_start, true) {
                control.report(RunProgress::Started);
            }
            let supervised = supervise(
                &mut child,
                cgroup.as_deref(),
                Budget {
                    wall: Duration::from_secs(limits.timeout_seconds.max(1)),
                    // The run's own budget, else the service-wide one.
                    cpu: limits
                        .cpu_time_ms
                        .map(Duration::from_millis)
                        .or(self.config.cpu_time_limit),
                    output_bytes: usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX),
                },
                &control.cancel,
            )
            .await;
            let wall_time = started.elapsed();
            let supervised = supervised.map_err(|e| internal("supervising the run failed", e))?;
            if attempts == 1 && never_started(&supervised) {
                tracing::debug!("a waiting sandbox died before taking its run; starting a new one");
                if let Some(cgroup) = &cgroup {
                    cgroup.kill_all().await;
                }
                continue;
            }
            break (child, supervised, wall_time, baseline);
        };

        if let Some(error) = &supervised.init.launch_error {
            // The script never ran: the launcher or the shim failed to prepare it. The guard
            // retires the cgroup and dropping the sandbox kills it.
            return Err(internal("cannot start the sandbox", error));
        }
        let mut capture = supervised.capture;
        if supervised.init.exit.is_none() && supervised.status.is_some() {
            // bubblewrap ended without the shim reporting: it may say why (it could not
            // create the sandbox).
            let messages = child.bwrap_messages();
            if !messages.is_empty() {
                capture.stderr.extend_from_slice(messages.as_bytes());
            }
        }
        // A cleanly ended run (the shim reported; nothing of the run is alive) leaves its
        // sandbox waiting for the slot's next run, as long as nothing else is in the cgroup.
        let stats = cgroup
            .as_ref()
            .map(|c| c.stats(baseline))
            .unwrap_or_default();
        // Until the next run sets its own, the slot's cgroup has no caps: a run with tiny
        // limits must not starve the preparation of the next run.
        if let Some(cgroup) = &cgroup {
            cgroup.set_idle_limits();
        }
        let reusable = supervised.status.is_none()
            && match &cgroup {
                None => true,
                Some(c) => {
                    holds_only_the_sandbox(c, child.pid())
                        && no_memory_left(c, self.config.idle_memory_max).await
                }
            };
        guard.armed = false;
        drop(guard);
        if reusable {
            if let Some(idle) = child.into_idle() {
                self.pool.park_after_run(lease, idle, next_prestart);
            }
        } else {
            // Killed, failed, or something was left: a new sandbox for the slot. One still
            // alive is killed from the inside out first.
            if supervised.status.is_none() {
                let _ = kill_tree(&mut child, cgroup.as_deref()).await;
            }
            if let Some(cgroup) = &cgroup {
                cgroup.kill_all().await;
                // A cgroup still holding processes, or memory a run left (charged here, it
                // would count against the next run's limit), is not used again.
                if !cgroup.is_empty() || !no_memory_left(cgroup, self.config.idle_memory_max).await
                {
                    self.pool.retire(slot, cgroup.clone());
                }
            }
            drop(child);
            self.pool.set_prestart(next_prestart);
            spawner.refill(lease, layout.cloned(), key, setup, bwrap_args.clone());
        }

        // The shim knows the real signal; bubblewrap only reports 128+N. Without a report
        // (the shim itself was killed) bubblewrap's status is all there is.
        let exit = supervised
            .init
            .exit
            .or_else(|| supervised.status.map(ExitKind::from))
            .unwrap_or(ExitKind::Code(255));
        let outcome = classify(supervised.stop, exit, stats.oom_kills);
        Ok(RunReport {
            outcome,
            output_truncated: capture.truncated(),
            stdout: into_text(capture.stdout),
            stderr: into_text(capture.stderr),
            wall_time,
            cpu_user: stats.cpu_user,
            cpu_system: stats.cpu_system,
            peak_memory_bytes: stats.peak_memory_bytes,
            pids_limit_hit: stats.pids_max_hits > 0,
        })
    }
}

/// How a slot is named in progress reports (and so in the run's `pod_*` events).
pub(crate) fn slot_name(slot: u32) -> String {
    format!("sandbox-slot-{slot}")
}

/// Whether the sandbox ended without taking the run: the shim never said it took it (the
/// `landlock` line), nothing was written, and bubblewrap is gone.
fn never_started(supervised: &Supervised) -> bool {
    supervised.stop == Stop::Finished
        && supervised.status.is_some()
        && supervised.init == InitStatus::default()
        && supervised.capture.stdout.is_empty()
        && supervised.capture.stderr.is_empty()
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

/// The report of a run whose memory limit is below what its sandbox needs before the script
/// starts: out of memory, nothing ran.
fn too_little_memory(reason: &std::io::Error, charged: u64) -> RunReport {
    RunReport {
        outcome: RunOutcome::OutOfMemory,
        stderr: format!("sandbox: {reason}\n"),
        peak_memory_bytes: charged,
        ..cancelled_before_start()
    }
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

fn outcome_label(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Exited { code: 0 } => "exited_zero",
        RunOutcome::Exited { .. } => "exited_nonzero",
        RunOutcome::Signaled { .. } => "signaled",
        RunOutcome::TimedOut => "timed_out",
        RunOutcome::OutputLimit => "output_limit",
        RunOutcome::OutOfMemory => "out_of_memory",
        RunOutcome::CpuLimit => "cpu_limit",
        RunOutcome::Cancelled => "cancelled",
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    async fn run(&self, spec: &RunSpec, control: RunControl) -> Result<RunReport, ExecError> {
        let mode = self.mode();
        let result = self.run_in_mode(&mode, spec, &control).await;
        let outcome = match &result {
            Ok(report) => outcome_label(report.outcome),
            Err(_) => "error",
        };
        counter!(catalogue::SANDBOX_RUNS_TOTAL, "outcome" => outcome).increment(1);
        result
    }

    fn health(&self) -> ExecutorHealth {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .health
            .clone()
    }
}

/// Captured bytes as text: valid UTF-8 is taken as it is (no copy of an output of up to the
/// output cap), anything else with its invalid sequences replaced.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::into_text;

    #[test]
    fn output_text_takes_valid_utf8_as_it_is_and_replaces_invalid_bytes() {
        let valid = "héllo\n".repeat(1000).into_bytes();
        let at = valid.as_ptr();
        let text = into_text(valid);
        assert_eq!(text, "héllo\n".repeat(1000));
        assert_eq!(text.as_ptr(), at, "valid output is not copied");
        assert_eq!(into_text(b"a\xffb".to_vec()), "a\u{fffd}b");
    }
}
