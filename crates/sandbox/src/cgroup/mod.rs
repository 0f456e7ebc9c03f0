//! Per-run cgroups: limits, the `cgroup.procs` fds the child joins through, kill sweeps and
//! accounting.

mod detect;
#[cfg(test)]
mod v2_tests;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use detect::{detect, CgroupLayout};
use detect::{real_mkdir, Mkdir};

/// Accounting read from a run cgroup after the tree is dead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CgroupStats {
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub peak_memory_bytes: u64,
    pub oom_kills: u64,
    pub pids_max_hits: u64,
}

/// Limits applied to one run cgroup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CgroupLimits {
    pub memory_bytes: u64,
    pub max_processes: u64,
    /// cgroup v2 `cpu.weight` scale (1..=10000, default 100); v1 `cpu.shares` = weight × 1024 / 100.
    pub cpu_weight: u64,
}

#[derive(Debug)]
enum Dirs {
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

/// One run's cgroup (one directory per v1 hierarchy, or one v2 directory). The
/// `cgroup.procs` files are opened up front so the forked child only has to `write(2)`.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dirs: Dirs,
    procs: Vec<File>,
    /// v2 only: whether `cpu.weight` exists (the cpu controller is enabled).
    cpu_weight: bool,
}

fn write_file(dir: &Path, name: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(name), value)
        .map_err(|e| io::Error::new(e.kind(), format!("write {}/{name}: {e}", dir.display())))
}

fn make_dir(mkdir: Mkdir, dir: &Path) -> io::Result<()> {
    mkdir(dir).map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", dir.display())))
}

fn open_procs(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("open {}/cgroup.procs: {e}", dir.display()),
            )
        })
}

/// The pids in the `cgroup.procs` files of `dirs`, sorted, without duplicates.
fn procs_in(dirs: &[&Path]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILLs every process listed in `dirs` once; true when there was none.
fn kill_procs_once(dirs: &[&Path]) -> bool {
    let pids = procs_in(dirs);
    for pid in &pids {
        crate::sys::kill_pid(*pid);
    }
    pids.is_empty()
}

/// Repeats `kill_once` (true: nothing was left) with short sleeps until it succeeds, at most
/// about a second; false when it never did.
fn kill_until_empty(mut kill_once: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if kill_once() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Empties a cgroup directory that no [`RunCgroup`] owns (one a dead service left) and
/// removes it. Blocking; best effort.
pub(crate) fn kill_and_remove_dir(dir: &Path) {
    if !kill_procs_once(&[dir]) {
        tracing::warn!(cgroup = %dir.display(), "killing sandbox processes of a service that is gone");
        if !kill_until_empty(|| kill_procs_once(&[dir])) {
            tracing::warn!(cgroup = %dir.display(), "processes survived the cgroup kill sweep");
        }
    }
    let _ = fs::remove_dir(dir);
}

/// The error of a memory limit a run cannot even start under.
fn too_small(limit: u64, held: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("the memory limit ({limit} bytes) is below what the sandbox itself holds ({held} bytes)"),
    )
}

/// Reads `key value` lines (memory.events, pids.events, cpu.stat, oom_control).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    keyed_value(&fs::read_to_string(path).ok()?, key)
}

/// Counters that cannot be reset, read when a run starts so its own share can be reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Baseline {
    oom_kills: u64,
    pids_max_hits: u64,
    /// Memory still charged when the run starts (page cache of earlier runs, bubblewrap).
    memory_bytes: u64,
}

impl RunCgroup {
    /// Creates the run's cgroup directories named `name`. On error everything created so far
    /// is removed again. Limits are applied with [`RunCgroup::apply_limits`].
    pub(crate) fn create(layout: &CgroupLayout, name: &str) -> io::Result<Self> {
        Self::create_with(layout, name, real_mkdir)
    }

    fn create_with(layout: &CgroupLayout, name: &str, mkdir: Mkdir) -> io::Result<Self> {
        let mut cgroup = RunCgroup {
            dirs: match layout {
                CgroupLayout::V1 { .. } => Dirs::V1 {
                    memory: PathBuf::new(),
                    pids: PathBuf::new(),
                    cpuacct: None,
                    cpu: None,
                },
                CgroupLayout::V2 { parent, .. } => Dirs::V2 {
                    dir: parent.join(name),
                },
            },
            procs: Vec::new(),
            cpu_weight: matches!(layout, CgroupLayout::V2 { cpu: true, .. }),
        };
        let result = cgroup.populate(layout, name, mkdir);
        match result {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                cgroup.procs.clear();
                cgroup.remove_dirs_now();
                Err(e)
            }
        }
    }

    fn populate(&mut self, layout: &CgroupLayout, name: &str, mkdir: Mkdir) -> io::Result<()> {
        match (layout, &mut self.dirs) {
            (
                CgroupLayout::V1 {
                    memory,
                    pids,
                    cpuacct,
                    cpu,
                },
                Dirs::V1 {
                    memory: m,
                    pids: p,
                    cpuacct: c,
                    cpu: cpu_dir,
                },
            ) => {
                let dir = memory.join(name);
                make_dir(mkdir, &dir)?;
                *m = dir;
                self.procs.push(open_procs(m)?);
                let dir = pids.join(name);
                make_dir(mkdir, &dir)?;
                *p = dir;
                self.procs.push(open_procs(p)?);
                if let Some(cpuacct) = cpuacct {
                    let dir = cpuacct.join(name);
                    make_dir(mkdir, &dir)?;
                    *c = Some(dir.clone());
                    self.procs.push(open_procs(&dir)?);
                }
                if let Some(cpu) = cpu {
                    let dir = cpu.join(name);
                    make_dir(mkdir, &dir)?;
                    *cpu_dir = Some(dir.clone());
                    self.procs.push(open_procs(&dir)?);
                }
            }
            (CgroupLayout::V2 { .. }, Dirs::V2 { dir }) => {
                make_dir(mkdir, dir)?;
                self.procs.push(open_procs(dir)?);
            }
            _ => return Err(io::Error::other("cgroup layout mismatch")),
        }
        Ok(())
    }

    /// Writes the limits of the next run. Safe to repeat on a reused cgroup: v1 requires
    /// `memsw >= limit` at every step, so the order depends on the direction of the change.
    /// A memory limit at or below what the waiting sandbox holds and the kernel cannot
    /// reclaim (everything charged but file cache) is refused with
    /// [`io::ErrorKind::OutOfMemory`] and nothing is written: such a run could not even start
    /// (and cgroup v2 would kill the sandbox to meet it). So is one the kernel refuses to
    /// shrink to (v1).
    pub(crate) fn apply_limits(&self, limits: CgroupLimits) -> io::Result<()> {
        let held = self.unreclaimable_memory();
        if limits.memory_bytes <= held {
            return Err(too_small(limits.memory_bytes, held));
        }
        let memory_limit = limits.memory_bytes.to_string();
        let pids_limit = limits.max_processes.max(1).to_string();
        let weight = limits.cpu_weight.clamp(1, 10_000);
        match &self.dirs {
            Dirs::V1 {
                memory, pids, cpu, ..
            } => {
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                // Absent without swap accounting; then there is no swap to escape to either.
                let written = if memsw.exists() {
                    write_file(memory, "memory.limit_in_bytes", &memory_limit)
                        .and_then(|()| {
                            write_file(memory, "memory.memsw.limit_in_bytes", &memory_limit)
                        })
                        .or_else(|_| {
                            write_file(memory, "memory.memsw.limit_in_bytes", &memory_limit)?;
                            write_file(memory, "memory.limit_in_bytes", &memory_limit)
                        })
                } else {
                    write_file(memory, "memory.limit_in_bytes", &memory_limit)
                };
                // EBUSY: the kernel could not reclaim enough to fit under the limit.
                if let Err(e) = written {
                    return Err(match e.raw_os_error() {
                        Some(libc::EBUSY | libc::EINVAL) => {
                            too_small(limits.memory_bytes, self.memory_usage())
                        }
                        _ => e,
                    });
                }
                write_file(pids, "pids.max", &pids_limit)?;
                if let Some(cpu) = cpu {
                    // Equal shares per run: a run's CPU weight does not grow with its
                    // process count, so one burner cannot starve the other runs.
                    write_file(cpu, "cpu.shares", &(weight * 1024 / 100).max(2).to_string())?;
                }
            }
            Dirs::V2 { dir } => {
                write_file(dir, "memory.max", &memory_limit)?;
                if dir.join("memory.swap.max").exists() {
                    write_file(dir, "memory.swap.max", "0")?;
                }
                write_file(dir, "pids.max", &pids_limit)?;
                if self.cpu_weight {
                    write_file(dir, "cpu.weight", &weight.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The limits of a cgroup between runs: no memory or process cap (what runs there is the
    /// sandbox preparing the next run, never a script; the next run's [`Self::apply_limits`]
    /// sets its own, so a run with tiny limits cannot starve the preparation of the next) and
    /// the lowest CPU weight, so preparation yields to the service and to running scripts.
    /// Best effort.
    pub(crate) fn set_idle_limits(&self) {
        match &self.dirs {
            Dirs::V1 {
                memory, pids, cpu, ..
            } => {
                // Raising: memsw first (v1 requires memsw >= limit at every step).
                let _ = fs::write(memory.join("memory.memsw.limit_in_bytes"), "-1");
                let _ = fs::write(memory.join("memory.limit_in_bytes"), "-1");
                let _ = fs::write(pids.join("pids.max"), "max");
                if let Some(cpu) = cpu {
                    let _ = fs::write(cpu.join("cpu.shares"), "2");
                }
            }
            Dirs::V2 { dir } => {
                let _ = fs::write(dir.join("memory.max"), "max");
                let _ = fs::write(dir.join("pids.max"), "max");
                if self.cpu_weight {
                    let _ = fs::write(dir.join("cpu.weight"), "1");
                }
            }
        }
    }

    /// Starts the accounting of a new run in a reused cgroup: resets what can be reset (CPU
    /// usage, peak memory) and returns the counters that cannot, for [`RunCgroup::stats`].
    /// Best effort: a failed reset only overstates the figures.
    pub(crate) fn start_accounting(&self) -> Baseline {
        match &self.dirs {
            Dirs::V1 {
                memory, cpuacct, ..
            } => {
                if let Some(cpuacct) = cpuacct {
                    let _ = fs::write(cpuacct.join("cpuacct.usage"), "0");
                }
                let _ = fs::write(memory.join("memory.max_usage_in_bytes"), "0");
            }
            Dirs::V2 { dir } => {
                // Kernels >= 6.12 reset the peak on write; older ones refuse, harmlessly.
                let _ = fs::write(dir.join("memory.peak"), "reset");
            }
        }
        let raw = self.raw_stats();
        Baseline {
            oom_kills: raw.oom_kills,
            pids_max_hits: raw.pids_max_hits,
            memory_bytes: self.memory_usage(),
        }
    }

    /// Bytes charged to the cgroup that the kernel cannot reclaim to meet a lower limit, as far
    /// as the counters tell: everything but file cache (which earlier runs leave charged here)
    /// and, where the kernel counts it (cgroup v2), reclaimable kernel caches such as dentries
    /// and inodes. On cgroup v1 those caches count here; [`Self::reclaim_down_to`] gives them
    /// back.
    pub(crate) fn unreclaimable_memory(&self) -> u64 {
        let (stat, keys): (PathBuf, &[&str]) = match &self.dirs {
            Dirs::V1 { memory, .. } => (
                memory.join("memory.stat"),
                &["total_active_file", "total_inactive_file"],
            ),
            Dirs::V2 { dir } => (
                dir.join("memory.stat"),
                &["active_file", "inactive_file", "slab_reclaimable"],
            ),
        };
        let stat = fs::read_to_string(stat).unwrap_or_default();
        let reclaimable = keys
            .iter()
            .map(|key| keyed_value(&stat, key).unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        self.memory_usage().saturating_sub(reclaimable)
    }

    /// Asks the kernel to reclaim what it can of the memory above `target` that
    /// [`Self::unreclaimable_memory`] counts (kernel caches a run filled, above all), leaving
    /// file cache alone as far as it can. Best effort; call between runs only (it briefly
    /// lowers the cgroup's limit on v1).
    pub(crate) fn reclaim_down_to(&self, target: u64) {
        let excess = self.unreclaimable_memory().saturating_sub(target);
        if excess == 0 {
            return;
        }
        match &self.dirs {
            Dirs::V1 { memory, .. } => {
                // A limit that leaves room for all of the file cache but not for the excess:
                // meeting it takes kernel caches and whatever else can be given back.
                let limit = self.memory_usage().saturating_sub(excess).to_string();
                let _ = write_file(memory, "memory.limit_in_bytes", &limit);
                let _ = write_file(memory, "memory.limit_in_bytes", "-1");
            }
            Dirs::V2 { dir } => {
                let _ = write_file(dir, "memory.reclaim", &excess.to_string());
            }
        }
    }

    /// Bytes charged to the cgroup now (0 when unreadable).
    pub(crate) fn memory_usage(&self) -> u64 {
        match &self.dirs {
            Dirs::V1 { memory, .. } => read_u64(&memory.join("memory.usage_in_bytes")),
            Dirs::V2 { dir } => read_u64(&dir.join("memory.current")),
        }
        .unwrap_or(0)
    }

    /// Raw fds of the opened `cgroup.procs` files; writing `"0"` to each moves the writer in.
    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    pub(crate) fn dirs(&self) -> Vec<&Path> {
        match &self.dirs {
            Dirs::V1 {
                memory,
                pids,
                cpuacct,
                cpu,
            } => [Some(memory), Some(pids), cpuacct.as_ref(), cpu.as_ref()]
                .into_iter()
                .flatten()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::as_path)
                .collect(),
            Dirs::V2 { dir } => vec![dir.as_path()],
        }
    }

    /// SIGKILLs every process in the cgroup once. Returns true when it was already empty.
    pub(crate) fn kill_all_once(&self) -> bool {
        if let Dirs::V2 { dir } = &self.dirs {
            let kill = dir.join("cgroup.kill");
            if kill.exists() && fs::write(&kill, "1").is_ok() {
                return self.pids().is_empty();
            }
        }
        kill_procs_once(&self.dirs())
    }

    fn pids(&self) -> Vec<i32> {
        procs_in(&self.dirs())
    }

    /// Kills until the cgroup is empty (bounded; blocking, short sleeps).
    pub(crate) fn kill_all_blocking(&self) {
        if !kill_until_empty(|| self.kill_all_once()) {
            tracing::warn!(cgroup = ?self.dirs(), "processes survived the cgroup kill sweep");
        }
    }

    /// Async variant of [`Self::kill_all_blocking`].
    pub(crate) async fn kill_all(&self) {
        for _ in 0..200 {
            if self.kill_all_once() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::warn!(cgroup = ?self.dirs(), "processes survived the cgroup kill sweep");
    }

    /// Reads the accounting of the run started with `baseline`. Missing files read as zero.
    pub(crate) fn stats(&self, baseline: Baseline) -> CgroupStats {
        let raw = self.raw_stats();
        CgroupStats {
            oom_kills: raw.oom_kills.saturating_sub(baseline.oom_kills),
            pids_max_hits: raw.pids_max_hits.saturating_sub(baseline.pids_max_hits),
            // Pages charged before the start (cached files of earlier runs) are not the run's;
            // a fresh cgroup would not have been charged for them either.
            peak_memory_bytes: raw.peak_memory_bytes.saturating_sub(baseline.memory_bytes),
            ..raw
        }
    }

    /// Tasks the cgroup is charged for (`pids.current`), counting exited but unreaped ones;
    /// `None` when unreadable.
    fn pids_charged(&self) -> Option<u64> {
        read_u64(&match &self.dirs {
            Dirs::V1 { pids, .. } => pids.join("pids.current"),
            Dirs::V2 { dir } => dir.join("pids.current"),
        })
    }

    /// True when no process is left in any of the directories, counting exited but unreaped
    /// ones (`pids.current`), which still hold a share of the next run's process limit.
    pub(crate) fn is_empty(&self) -> bool {
        self.pids().is_empty() && self.pids_charged().is_none_or(|n| n == 0)
    }

    /// The processes of the cgroup, when every directory lists the same ones, and the tasks
    /// it is charged for (`pids.current`, which also counts exited but unreaped ones), read
    /// first: processes that start between the two reads only add to the list.
    pub(crate) fn members(&self) -> Option<(Vec<i32>, u64)> {
        let charged = self.pids_charged().unwrap_or(0);
        let dirs = self.dirs();
        let (first, rest) = dirs.split_first()?;
        let members = procs_in(&[first]);
        rest.iter()
            .all(|dir| procs_in(&[dir]) == members)
            .then_some((members, charged))
    }

    fn raw_stats(&self) -> CgroupStats {
        match &self.dirs {
            Dirs::V1 {
                memory,
                pids,
                cpuacct,
                ..
            } => {
                let (cpu_user, cpu_system) = cpuacct
                    .as_ref()
                    .map(|d| {
                        (
                            read_u64(&d.join("cpuacct.usage_user")).unwrap_or(0),
                            read_u64(&d.join("cpuacct.usage_sys")).unwrap_or(0),
                        )
                    })
                    .unwrap_or((0, 0));
                CgroupStats {
                    cpu_user: Duration::from_nanos(cpu_user),
                    cpu_system: Duration::from_nanos(cpu_system),
                    peak_memory_bytes: read_u64(&memory.join("memory.max_usage_in_bytes"))
                        .unwrap_or(0),
                    oom_kills: read_keyed(&memory.join("memory.oom_control"), "oom_kill")
                        .unwrap_or(0),
                    pids_max_hits: read_keyed(&pids.join("pids.events"), "max").unwrap_or(0),
                }
            }
            Dirs::V2 { dir } => {
                let cpu = fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
                CgroupStats {
                    cpu_user: Duration::from_micros(keyed_value(&cpu, "user_usec").unwrap_or(0)),
                    cpu_system: Duration::from_micros(
                        keyed_value(&cpu, "system_usec").unwrap_or(0),
                    ),
                    peak_memory_bytes: read_u64(&dir.join("memory.peak")).unwrap_or(0),
                    oom_kills: read_keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0),
                    pids_max_hits: read_keyed(&dir.join("pids.events"), "max").unwrap_or(0),
                }
            }
        }
    }

    /// CPU time used so far by every process of the run (user + system).
    pub(crate) fn cpu_usage(&self) -> Duration {
        match &self.dirs {
            Dirs::V1 {
                cpuacct: Some(dir), ..
            } => Duration::from_nanos(read_u64(&dir.join("cpuacct.usage")).unwrap_or(0)),
            Dirs::V1 { .. } => Duration::ZERO,
            Dirs::V2 { dir } => {
                Duration::from_micros(read_keyed(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0))
            }
        }
    }

    /// Tries each rmdir once; returns true when every directory is gone.
    fn remove_dirs_now(&self) -> bool {
        let mut all_gone = true;
        for dir in self.dirs() {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => all_gone = false,
            }
        }
        all_gone
    }

    /// Removes the directories, retrying while the kernel still reports them busy (blocking).
    pub(crate) fn remove_blocking(&self) {
        for _ in 0..100 {
            if self.remove_dirs_now() {
                return;
            }
            self.kill_all_once();
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::warn!(cgroup = ?self.dirs(), "could not remove run cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::keyed_value;

    #[test]
    fn keyed_values_are_found_by_exact_key() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(3));
        assert_eq!(keyed_value(text, "under_oom"), Some(0));
        assert_eq!(keyed_value("max 12\n", "max"), Some(12));
        assert_eq!(keyed_value("", "max"), None);
    }
}
