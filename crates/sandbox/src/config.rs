//! Configuration of the local sandbox executor.

use std::path::PathBuf;

use integr8s_core::execution::RunLimits;

/// The default [`SandboxConfig::uid_claim_dir`].
pub const DEFAULT_UID_CLAIM_DIR: &str = "/run/integr8s/sandbox-uids";

/// Settings of [`crate::LocalExecutor`]. `Default` gives a working setup for a root service on a
/// Debian-like host.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The bubblewrap binary: an absolute path, or a name looked up in `PATH` and then in
    /// `/usr/bin`. Default `"bwrap"`.
    pub bwrap: PathBuf,
    /// First unprivileged host uid (and gid) used for runs; slot `n` runs as `uid_base + n`.
    /// These ids need not exist in `/etc/passwd`. Default `100000`. Ignored (our own uid is
    /// used) when the service does not run as root.
    pub uid_base: u32,
    /// Where the slot uids are claimed (one lock file per uid, see [`crate::LocalExecutor`]):
    /// a directory every integr8s process on the host shares. Default
    /// `/run/integr8s/sandbox-uids`.
    pub uid_claim_dir: PathBuf,
    /// Number of runs allowed at the same time; each one gets its own host uid. Default 2.
    pub max_concurrent: usize,
    /// Parent cgroup for run cgroups. `None` auto-detects: our own cgroup of each controller
    /// (cgroup v1) or of the unified hierarchy (cgroup v2).
    pub cgroup_parent: Option<PathBuf>,
    /// Size of the writable `/work` tmpfs. Default 64 MiB.
    pub work_size_bytes: u64,
    /// Size of the `/tmp` tmpfs. Default 16 MiB.
    pub tmp_size_bytes: u64,
    /// Size of the `/dev/shm` tmpfs. Default 16 MiB.
    pub shm_size_bytes: u64,
    /// Extra read-only binds (host source, path inside), e.g. runtime trees outside `/usr`.
    /// Sources must be traversable by the unprivileged sandbox uid.
    pub extra_ro_binds: Vec<(PathBuf, PathBuf)>,
    /// `PATH` inside the sandbox.
    pub path_env: String,
    /// `LANG` inside the sandbox.
    pub lang_env: String,
    /// Without cgroups, cap memory with `RLIMIT_AS` (breaks runtimes that reserve large
    /// address ranges, such as Go and the JVM). Default true.
    pub rlimit_as_fallback: bool,
    /// CPU weight of each run's cgroup (cgroup v2 `cpu.weight` scale, 1..=10000; v1
    /// `cpu.shares` = weight × 1024 / 100). Every run gets the same weight whatever its
    /// process count, so one run's burners cannot starve the others. Default 100.
    pub cpu_weight: u64,
    /// CPU-time budget of one run, all its processes together, enforced from the cgroup's
    /// accounting (polled every 50 ms); exceeding it ends the run as
    /// [`integr8s_core::ports::executor::RunOutcome::CpuLimit`]. `None` (the default) leaves
    /// only the wall-clock timeout.
    pub cpu_time_limit: Option<std::time::Duration>,
    /// The limits slots are warmed for at start: runs with these limits (the service's usual
    /// ones) find a bubblewrap already waiting. Other limits work too, starting cold.
    pub warm_limits: RunLimits,
    /// The most memory a slot's cgroup may hold between runs, kernel memory included, file
    /// cache excluded: what a waiting sandbox needs (bubblewrap, the shim and the next run's
    /// prepared init with its namespaces and mounts: about 1.5 MiB measured on cgroup v1),
    /// with room to spare. A slot holding more after a run (once kernel caches the run filled
    /// are reclaimed) keeps something of the run: its sandbox and cgroup are retired rather
    /// than handed to the next run. An absolute bound rather than a footprint measured per
    /// sandbox: a measurement taken while a new sandbox is still starting would be too low,
    /// and one taken after a run could include what the run left. Default 4 MiB. On cgroup v1
    /// some kernels keep part of the dentries and inodes a run looked up charged after every
    /// reclaim (3–6 MiB measured after a walk of the whole file system), so such a run
    /// retires its slot.
    pub idle_memory_max: u64,
    /// Whether a run's interpreter may be started ahead of the run when its spec names a
    /// prestart command (see `RunSpec::prestart`): after a slot's run ended cleanly, its next
    /// run init starts the interpreter the slot's last run used, inside its own isolation;
    /// the next run uses it only when it runs exactly that command with that environment and
    /// those limits, and it serves that run only. Default on.
    pub prestart: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bwrap: PathBuf::from("bwrap"),
            uid_base: 100_000,
            uid_claim_dir: PathBuf::from(DEFAULT_UID_CLAIM_DIR),
            max_concurrent: 2,
            cgroup_parent: None,
            work_size_bytes: 64 * 1024 * 1024,
            tmp_size_bytes: 16 * 1024 * 1024,
            shm_size_bytes: 16 * 1024 * 1024,
            extra_ro_binds: Vec::new(),
            path_env: "/usr/local/bin:/usr/bin:/bin".to_owned(),
            lang_env: "C.UTF-8".to_owned(),
            rlimit_as_fallback: true,
            cpu_weight: 100,
            cpu_time_limit: None,
            warm_limits: RunLimits::default(),
            idle_memory_max: 4 * 1024 * 1024,
            prestart: true,
        }
    }
}
