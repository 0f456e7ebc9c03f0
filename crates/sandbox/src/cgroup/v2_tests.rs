//! The cgroup v2 file logic on a fake cgroup tree in a temp dir: detection, delegation
//! set-up, limits, accounting and the kill path, with the exact files and values checked.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::detect::{detect_with, DetectFailure, LEAF, SUBTREE};
use super::{CgroupLayout, CgroupLimits, RunCgroup};

/// A directory removed on drop.
struct FakeRoot(PathBuf);

impl FakeRoot {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "integr8s-fake-cgroup-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        FakeRoot(dir)
    }

    /// Our cgroup `system.slice/integr8s.service` with its interface files.
    fn service(&self, controllers: &str, subtree_control: &str, procs: &str) -> PathBuf {
        let own = self.0.join("system.slice/integr8s.service");
        fs::create_dir_all(&own).unwrap();
        for (name, value) in [
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", subtree_control),
            ("cgroup.procs", procs),
            ("cgroup.type", "domain\n"),
        ] {
            fs::write(own.join(name), value).unwrap();
        }
        own
    }

    fn detect(&self) -> Result<CgroupLayout, DetectFailure> {
        let mountinfo = format!(
            "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
            self.0.display()
        );
        detect_with(
            "0::/system.slice/integr8s.service\n",
            &mountinfo,
            None,
            fake_mkdir,
        )
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What the kernel does on mkdir in a cgroup2 tree, as far as the code under test looks.
fn fake_mkdir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    for (name, value) in [
        ("cgroup.procs", ""),
        ("cgroup.subtree_control", ""),
        ("cgroup.type", "domain\n"),
        ("cgroup.kill", ""),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("memory.current", "0\n"),
        ("memory.peak", "0\n"),
        (
            "memory.events",
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        ),
        ("pids.max", "max\n"),
        ("pids.events", "max 0\n"),
        ("cpu.weight", "untouched\n"),
        ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
    ] {
        fs::write(dir.join(name), value)?;
    }
    Ok(())
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn detection_moves_our_processes_to_a_leaf_and_enables_the_controllers() {
    let root = FakeRoot::new();
    let own = root.service("cpuset cpu io memory hugetlb pids\n", "\n", "111\n222\n");
    let layout = root.detect().expect("usable");
    let parent = own.join(SUBTREE);
    assert_eq!(
        layout,
        CgroupLayout::V2 {
            parent: parent.clone(),
            cpu: true
        }
    );
    // No internal processes: ours were moved out before enabling controllers for children.
    assert_eq!(read(&own.join(LEAF).join("cgroup.procs")), "111\n222\n");
    assert_eq!(
        read(&own.join("cgroup.subtree_control")),
        "+memory +pids +cpu"
    );
    assert_eq!(
        read(&parent.join("cgroup.subtree_control")),
        "+memory +pids +cpu"
    );
}

#[test]
fn already_delegated_controllers_are_left_alone() {
    let root = FakeRoot::new();
    let own = root.service("memory pids\n", "memory pids\n", "111\n");
    let layout = root.detect().expect("usable");
    assert_eq!(
        layout,
        CgroupLayout::V2 {
            parent: own.join(SUBTREE),
            cpu: false
        }
    );
    assert!(!own.join(LEAF).exists(), "no leaf needed");
    assert_eq!(read(&own.join("cgroup.subtree_control")), "memory pids\n");
    assert_eq!(
        read(&own.join(SUBTREE).join("cgroup.subtree_control")),
        "+memory +pids"
    );
}

#[test]
fn the_root_cgroup_is_exempt_from_the_leaf_move() {
    let root = FakeRoot::new();
    let own = root.service("memory pids cpu\n", "\n", "1\n");
    fs::remove_file(own.join("cgroup.type")).unwrap();
    root.detect().expect("usable");
    assert!(!own.join(LEAF).exists());
    assert_eq!(
        read(&own.join("cgroup.subtree_control")),
        "+memory +pids +cpu"
    );
}

#[test]
fn missing_controllers_name_the_cgroup_to_delegate() {
    let root = FakeRoot::new();
    let own = root.service("hugetlb\n", "\n", "111\n");
    let failure = root.detect().expect_err("memory is not delegated");
    assert_eq!(failure.v2_dir.as_deref(), Some(own.as_path()));
    assert!(
        failure.cause.starts_with(&format!(
            "cgroup v2 controller 'memory' is not available in {} (have: 'hugetlb')",
            own.display()
        )),
        "{}",
        failure.cause
    );
    assert!(!own.join(SUBTREE).exists(), "nothing created");
    assert_eq!(read(&own.join("cgroup.subtree_control")), "\n");
}

fn run_cgroup(root: &FakeRoot, cpu: bool) -> (RunCgroup, PathBuf) {
    let parent = root.0.join(SUBTREE);
    fs::create_dir_all(&parent).unwrap();
    let layout = CgroupLayout::V2 {
        parent: parent.clone(),
        cpu,
    };
    let cgroup = RunCgroup::create_with(&layout, "run-7", fake_mkdir).expect("created");
    (cgroup, parent.join("run-7"))
}

#[test]
fn limits_are_written_to_the_v2_files() {
    let root = FakeRoot::new();
    let (cgroup, dir) = run_cgroup(&root, true);
    assert_eq!(cgroup.procs_fds().len(), 1);
    cgroup
        .apply_limits(CgroupLimits {
            memory_bytes: 256 * 1024 * 1024,
            max_processes: 64,
            cpu_weight: 100,
        })
        .unwrap();
    assert_eq!(read(&dir.join("memory.max")), "268435456");
    assert_eq!(read(&dir.join("memory.swap.max")), "0");
    assert_eq!(read(&dir.join("pids.max")), "64");
    assert_eq!(read(&dir.join("cpu.weight")), "100");

    // Out-of-range values are clamped to what the kernel accepts.
    cgroup
        .apply_limits(CgroupLimits {
            memory_bytes: 1,
            max_processes: 0,
            cpu_weight: 20_000,
        })
        .unwrap();
    assert_eq!(read(&dir.join("pids.max")), "1");
    assert_eq!(read(&dir.join("cpu.weight")), "10000");
}

#[test]
fn without_cpu_or_swap_files_only_memory_and_pids_are_written() {
    let root = FakeRoot::new();
    let (cgroup, dir) = run_cgroup(&root, false);
    fs::remove_file(dir.join("memory.swap.max")).unwrap();
    cgroup
        .apply_limits(CgroupLimits {
            memory_bytes: 1024,
            max_processes: 5,
            cpu_weight: 100,
        })
        .unwrap();
    assert_eq!(read(&dir.join("memory.max")), "1024");
    assert_eq!(read(&dir.join("pids.max")), "5");
    assert!(!dir.join("memory.swap.max").exists());
    assert_eq!(read(&dir.join("cpu.weight")), "untouched\n");
}

#[test]
fn accounting_reads_the_v2_counters_relative_to_the_start() {
    let root = FakeRoot::new();
    let (cgroup, dir) = run_cgroup(&root, true);
    // Left over from the slot's previous run.
    fs::write(dir.join("memory.current"), "4096\n").unwrap();
    fs::write(dir.join("memory.events"), "max 0\noom 1\noom_kill 1\n").unwrap();
    fs::write(dir.join("pids.events"), "max 2\n").unwrap();
    let baseline = cgroup.start_accounting();
    assert_eq!(read(&dir.join("memory.peak")), "reset");

    fs::write(
        dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
    )
    .unwrap();
    fs::write(dir.join("memory.peak"), "1052672\n").unwrap();
    fs::write(
        dir.join("memory.events"),
        "max 4\noom 3\noom_kill 3\noom_group_kill 0\n",
    )
    .unwrap();
    fs::write(dir.join("pids.events"), "max 5\n").unwrap();

    assert_eq!(cgroup.cpu_usage(), Duration::from_micros(1500));
    let stats = cgroup.stats(baseline);
    assert_eq!(stats.cpu_user, Duration::from_micros(1000));
    assert_eq!(stats.cpu_system, Duration::from_micros(500));
    assert_eq!(stats.peak_memory_bytes, 1_052_672 - 4096);
    assert_eq!(stats.oom_kills, 2);
    assert_eq!(stats.pids_max_hits, 3);
}

#[test]
fn kill_uses_cgroup_kill_when_present_and_signals_pids_otherwise() {
    let root = FakeRoot::new();
    let (cgroup, dir) = run_cgroup(&root, true);
    assert!(cgroup.kill_all_once(), "empty cgroup");
    assert_eq!(read(&dir.join("cgroup.kill")), "1");

    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    fs::write(dir.join("cgroup.procs"), format!("{}\n", sleeper.id())).unwrap();
    fs::write(dir.join("cgroup.kill"), "").unwrap();
    // cgroup.kill is chosen; no process is signalled one by one.
    assert!(!cgroup.kill_all_once());
    assert_eq!(read(&dir.join("cgroup.kill")), "1");
    assert_eq!(sleeper.try_wait().unwrap(), None, "not signalled directly");

    // Kernels before 5.14 have no cgroup.kill: every listed process gets SIGKILL.
    fs::remove_file(dir.join("cgroup.kill")).unwrap();
    assert!(!cgroup.kill_all_once());
    let status = sleeper.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!dir.join("cgroup.kill").exists());
}
