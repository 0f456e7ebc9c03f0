//! Sandbox slots and the thread that starts bubblewrap for them.
//!
//! A slot is a host uid plus a cgroup kept across runs (created once, limits rewritten and
//! accounting reset per run, replaced when a process survived the kill sweep), plus a
//! sandbox that serves the slot's runs one after another (see [`crate::launch`]). A slot is
//! handed out again only once its sandbox waits for the next run: the last one cleanly ended
//! and nothing but the sandbox is left in the cgroup, or a new sandbox was started after a
//! killed or failed run.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use crate::args::BwrapArgs;
use crate::cgroup::{CgroupLayout, RunCgroup};
use crate::launch::{self, Launch, LaunchKey};
use crate::sys::ChildSetup;

/// What a slot keeps between runs.
#[derive(Debug, Default)]
pub(crate) struct SlotState {
    pub cgroup: Option<Arc<RunCgroup>>,
    pub warm: Option<Launch>,
}

/// Every slot of an executor.
#[derive(Debug)]
pub(crate) struct SlotPool {
    states: Vec<Mutex<SlotState>>,
    free: Mutex<Vec<u32>>,
    available: Arc<Semaphore>,
    /// What the executor's last run would have started ahead (see [`Launch::prestart`]):
    /// waiting sandboxes without an interpreter started ahead get this one.
    prestart: Mutex<Option<Arc<[u8]>>>,
}

/// Numbers cgroup names process-wide: two executors in one process must never share (and so
/// sweep or remove) each other's cgroups.
static CGROUP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Whether this process has cleaned up run cgroups left by dead processes.
static SWEPT: AtomicBool = AtomicBool::new(false);

/// Cleans up after service processes that no longer exist (killed without a chance to clean
/// up): their `run-<pid>-<n>` cgroups are emptied (whatever is left in one is a sandbox of that
/// dead service, e.g. one caught inside bubblewrap's start-up) and removed. A cgroup whose
/// service pid exists again (reused) is left alone.
fn sweep_stale(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != own && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            crate::cgroup::kill_and_remove_dir(&entry.path());
        }
    }
}

/// Exclusive use of one slot; returns it to the pool on drop.
#[derive(Debug)]
pub(crate) struct SlotLease {
    pool: Arc<SlotPool>,
    pub slot: u32,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        // The slot must be listed before the permit lets the next run look for it.
        self.pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.slot);
    }
}

impl SlotPool {
    pub(crate) fn new(count: u32) -> Arc<Self> {
        Arc::new(SlotPool {
            states: (0..count).map(|_| Mutex::default()).collect(),
            free: Mutex::new((0..count).rev().collect()),
            available: Arc::new(Semaphore::new(count as usize)),
            prestart: Mutex::new(None),
        })
    }

    /// Number of slots.
    pub(crate) fn slot_count(&self) -> usize {
        self.states.len()
    }

    /// Waits for a free slot.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<SlotLease, AcquireError> {
        let permit = self.available.clone().acquire_owned().await?;
        let slot = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or(0);
        Ok(SlotLease {
            pool: self.clone(),
            slot,
            _permit: permit,
        })
    }

    pub(crate) fn state(&self, slot: u32) -> MutexGuard<'_, SlotState> {
        self.states
            .get(slot as usize)
            .unwrap_or(&self.states[0])
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot's cgroup, created when it has none.
    pub(crate) fn cgroup(&self, slot: u32, layout: &CgroupLayout) -> io::Result<Arc<RunCgroup>> {
        if let Some(cgroup) = &self.state(slot).cgroup {
            return Ok(cgroup.clone());
        }
        // A name can be taken by a cgroup a crashed process left behind under a pid that is now
        // ours; the failed attempt removes such a directory when it is empty, so try again.
        let mut attempt = 0;
        let cgroup = loop {
            let name = format!(
                "run-{}-{}",
                std::process::id(),
                CGROUP_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match RunCgroup::create(layout, &name) {
                Ok(c) => break Arc::new(c),
                Err(e) if attempt < 4 && e.kind() == io::ErrorKind::AlreadyExists => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        if !SWEPT.swap(true, Ordering::Relaxed) {
            for dir in cgroup.dirs() {
                if let Some(parent) = dir.parent() {
                    sweep_stale(parent);
                }
            }
        }
        self.state(slot).cgroup = Some(cgroup.clone());
        Ok(cgroup)
    }

    /// Puts a sandbox that finished a run cleanly back into its slot for the slot's next run,
    /// and frees the slot.
    pub(crate) fn park(&self, lease: SlotLease, sandbox: Launch) {
        self.state(lease.slot).warm = Some(sandbox);
        drop(lease);
    }

    /// Puts a sandbox whose run ended cleanly back into its slot, like [`Self::park`], after
    /// asking it to start `prestart` (the interpreter the run used, if it has one) ahead of the
    /// slot's next run. The spec becomes the one every waiting sandbox without an interpreter
    /// started ahead gets (they get it now); a run without one clears it, so sandboxes prepared
    /// later start nothing ahead until a run has one again.
    pub(crate) fn park_after_run(
        &self,
        lease: SlotLease,
        mut sandbox: Launch,
        prestart: Option<Arc<[u8]>>,
    ) {
        self.set_prestart(prestart.clone());
        if let Some(spec) = prestart {
            start_ahead(&mut sandbox, &spec);
            for slot in 0..self.states.len() {
                if slot != lease.slot as usize {
                    if let Some(waiting) = self.state(slot as u32).warm.as_mut() {
                        start_ahead(waiting, &spec);
                    }
                }
            }
        }
        self.park(lease, sandbox);
    }

    /// Records what the last run would have started ahead (see [`Self::park_after_run`]).
    pub(crate) fn set_prestart(&self, prestart: Option<Arc<[u8]>>) {
        *self.prestart.lock().unwrap_or_else(PoisonError::into_inner) = prestart;
    }

    /// The spec a newly prepared sandbox starts ahead (see [`Self::park_after_run`]).
    fn prestart(&self) -> Option<Arc<[u8]>> {
        self.prestart
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes `cgroup` away from the slot (a process survived in it, or a run was abandoned)
    /// and kills and removes it in the background.
    pub(crate) fn retire(&self, slot: u32, cgroup: Arc<RunCgroup>) {
        {
            let mut state = self.state(slot);
            if state
                .cgroup
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &cgroup))
            {
                state.cgroup = None;
                state.warm = None;
            }
        }
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

/// Asks a waiting sandbox without one to start the interpreter `spec` names ahead of its run
/// (one that has one keeps it, see [`Launch::prestart`]).
fn start_ahead(sandbox: &mut Launch, spec: &Arc<[u8]>) {
    if let Err(e) = sandbox.prestart(spec.clone()) {
        tracing::debug!(error = %e, "cannot start a run's interpreter ahead");
    }
}

impl Drop for SlotPool {
    fn drop(&mut self) {
        for state in &mut self.states {
            let state = state.get_mut().unwrap_or_else(PoisonError::into_inner);
            state.warm = None;
            if let Some(cgroup) = state.cgroup.take() {
                cgroup.kill_all_blocking();
                cgroup.remove_blocking();
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One long-lived thread that starts every bubblewrap. A child's parent-death signal fires
/// when the *thread* that started it ends, so waiting processes must come from a thread that
/// lives as long as the executor; it also keeps the blocking spawn, reaping and cgroup sweeps
/// off the async runtime.
#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Spawner {
    pub(crate) fn start() -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sandbox-spawner".into())
            .spawn(move || {
                // Ends when the executor (the only sender) is dropped.
                while let Ok(job) = queue.recv() {
                    job();
                }
            })?;
        Ok(Spawner {
            jobs: Mutex::new(jobs),
        })
    }

    fn submit(&self, job: Job) -> io::Result<()> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| io::Error::other("the sandbox spawner thread is gone"))
    }

    /// Starts a bubblewrap now and waits for it.
    pub(crate) async fn spawn(
        &self,
        key: LaunchKey,
        setup: ChildSetup,
        args: Arc<BwrapArgs>,
    ) -> io::Result<Launch> {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            // The receiver is gone only if the run was abandoned; the launch is dropped then.
            let _ = reply.send(launch::spawn(key, setup, &args));
        }))?;
        result
            .await
            .map_err(|_| io::Error::other("the sandbox spawner dropped a request"))?
    }

    /// Prepares the slot's next sandbox in the background (its waiting run starting the
    /// interpreter the last run would have, see [`SlotPool::park_after_run`]), then releases
    /// the slot. Without a
    /// cgroup layout the process is started outside any cgroup (rlimit mode).
    pub(crate) fn refill(
        &self,
        lease: SlotLease,
        layout: Option<CgroupLayout>,
        key: LaunchKey,
        mut setup: ChildSetup,
        args: Arc<BwrapArgs>,
    ) {
        let job: Job = Box::new(move || {
            let pool = lease.pool.clone();
            let slot = lease.slot;
            let cgroup = match &layout {
                Some(layout) => match pool.cgroup(slot, layout) {
                    Ok(cgroup) => Some(cgroup),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prepare a slot cgroup");
                        return;
                    }
                },
                None => None,
            };
            // A slot refilled twice (the self-test's run, then the warm-up) keeps the first.
            let ready = pool
                .state(slot)
                .warm
                .as_ref()
                .is_some_and(|w| w.key == key && w.alive());
            if ready {
                return;
            }
            if let Some(cgroup) = &cgroup {
                cgroup.set_idle_limits();
            }
            setup.cgroup_procs = cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default();
            match launch::spawn(key, setup, &args) {
                Ok(mut warm) => {
                    // Under the slot's lock, so a run parked meanwhile either sees this
                    // sandbox or has already left its spec for it.
                    let mut state = pool.state(slot);
                    if let Some(spec) = pool.prestart() {
                        start_ahead(&mut warm, &spec);
                    }
                    state.warm = Some(warm);
                }
                Err(e) => tracing::debug!(error = %e, "cannot start a sandbox for a slot"),
            }
            drop(lease);
        });
        if let Err(e) = self.submit(job) {
            tracing::warn!(error = %e, "slot released without a prepared bubblewrap");
        }
    }
}
