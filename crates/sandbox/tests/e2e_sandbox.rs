//! End-to-end tests of the local sandbox with real bubblewrap, run as root: isolation holds,
//! limits are enforced, accounting comes from the cgroup, and no process outlives its run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use integr8s_core::ports::executor::{ExecError, Executor, RunControl, RunOutcome};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

mod common;

use common::{
    executor, host_pids_with, marker, ready_executor, run, run_on, run_with, spec, wait_until_gone,
    DEADLINE, UID_BASE,
};

const PYTHON: &str = "/usr/bin/python3";
async fn wait_for_host_pid(marker: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = host_pids_with(marker).first() {
            return *pid;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no process with {marker} appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_reports_ready_with_cgroup_v1_and_landlock_here() {
    let health = executor().await.health();
    assert!(health.ready, "{health:?}");
    assert!(
        health
            .mode
            .starts_with("full: userns+cgroup-v1+seccomp+landlock-abi-"),
        "{health:?}"
    );
    let abi: u32 = health
        .mode
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(abi >= 1, "{health:?}");
    let detail = health.detail.unwrap_or_default();
    assert!(
        detail.starts_with(&format!(
            "full isolation: user namespaces + cgroup v1 + seccomp + landlock ABI {abi}"
        )),
        "{detail}"
    );
}

#[tokio::test]
async fn python_hello_world() {
    let report = run(&spec(
        "main.py",
        "print('hello from python')\n",
        &[PYTHON, "main.py"],
    ))
    .await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "hello from python\n");
    assert_eq!(report.stderr, "");
    assert!(!report.output_truncated);
}

#[tokio::test]
async fn bash_exit_code_and_stderr_are_reported() {
    let script = "echo out\necho err >&2\nexit 3\n";
    let report = run(&spec("main.sh", script, &["bash", "main.sh"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 3 });
    assert_eq!(report.stdout, "out\n");
    assert_eq!(report.stderr, "err\n");
}

#[tokio::test]
async fn timeout_kills_the_whole_tree_including_daemons() {
    let m = marker("timeout");
    let script = format!(
        "( setsid bash -c 'exec -a {m}-daemon sleep 100' & )\n\
         bash -c 'exec -a {m}-child sleep 100' &\n\
         echo started\n\
         exec -a {m}-main sleep 100\n"
    );
    let mut s = spec("main.sh", &script, &["bash", "main.sh"]);
    s.limits.timeout_seconds = 2;
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::TimedOut, "{report:?}");
    assert_eq!(report.stdout, "started\n");
    assert!(
        host_pids_with(&m).is_empty(),
        "left behind: {:?}",
        host_pids_with(&m)
    );
}

#[tokio::test]
async fn leftover_daemon_dies_with_a_finished_run() {
    let m = marker("daemon");
    let script = format!(
        "( setsid bash -c 'exec -a {m} sleep 100' < /dev/null > /dev/null 2>&1 & )\necho done\n"
    );
    let report = run(&spec("main.sh", &script, &["bash", "main.sh"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(host_pids_with(&m).is_empty());
}

#[tokio::test]
async fn cancel_token_kills_the_run() {
    let m = marker("cancel");
    let s = spec(
        "main.sh",
        &format!("exec -a {m} sleep 100\n"),
        &["bash", "main.sh"],
    );
    let control = RunControl::default();
    let cancel = control.cancel.clone();
    let canceller = async {
        wait_for_host_pid(&m).await;
        cancel.cancel();
    };
    let (report, ()) = tokio::join!(run_with(&s, control.clone()), canceller);
    assert_eq!(report.outcome, RunOutcome::Cancelled);
    assert!(host_pids_with(&m).is_empty());
}

#[tokio::test]
async fn dropping_the_run_future_kills_the_tree() {
    let m = marker("drop");
    let s = spec(
        "main.sh",
        &format!("exec -a {m} sleep 100\n"),
        &["bash", "main.sh"],
    );
    let task = tokio::spawn(async move {
        let _ = executor().await.run(&s, RunControl::default()).await;
    });
    wait_for_host_pid(&m).await;
    task.abort();
    let _ = task.await;
    wait_until_gone(&m).await;
}

#[tokio::test]
async fn output_cap_truncates_with_a_marker() {
    let mut s = spec("main.sh", "yes\n", &["bash", "main.sh"]);
    s.limits.max_output_bytes = 64 * 1024;
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::OutputLimit);
    assert!(report.output_truncated);
    assert!(report.stdout.starts_with("y\ny\n"));
    assert!(report
        .stdout
        .ends_with("[output truncated: limit of 65536 bytes reached]\n"));
    let kept = report.stdout.len() - "\n[output truncated: limit of 65536 bytes reached]\n".len();
    assert_eq!(kept + report.stderr.len(), 64 * 1024);
}

#[tokio::test]
async fn memory_bomb_is_out_of_memory_with_peak_reported() {
    let script = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n";
    let mut s = spec("main.py", script, &[PYTHON, "main.py"]);
    s.limits.memory_bytes = 64 * 1024 * 1024;
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::OutOfMemory, "{report:?}");
    assert!(report.peak_memory_bytes > 32 * 1024 * 1024, "{report:?}");
    assert!(report.peak_memory_bytes <= 64 * 1024 * 1024, "{report:?}");
}

#[tokio::test]
async fn fork_bomb_is_contained_by_the_pids_limit() {
    let m = marker("forkbomb");
    let file = format!("{m}.sh");
    let mut s = spec(
        &file,
        // Every level waits for its children, so the tree keeps growing until the limit
        // stops it instead of collapsing as parents exit.
        "bomb() { bomb | bomb & wait; }\nbomb\n",
        &["bash", &file],
    );
    s.limits.max_processes = 32;
    s.limits.timeout_seconds = 3;
    let report = run(&s).await;
    assert!(report.pids_limit_hit, "{report:?}");
    assert!(host_pids_with(&m).is_empty());
}

/// A run may have exactly as many processes as it asked for, the sandbox's own not counted:
/// with 4, Python and three children fit and a fourth fork is refused.
#[tokio::test]
async fn a_run_gets_exactly_its_process_limit() {
    let script = "import os, time\n\
         forked = 0\n\
         for _ in range(6):\n\
         \x20   try:\n        pid = os.fork()\n    except OSError:\n        break\n\
         \x20   if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n\
         \x20   forked += 1\n\
         print(forked)\n";
    let mut s = spec("main.py", script, &[PYTHON, "main.py"]);
    s.limits.max_processes = 4;
    let report = run(&s).await;
    assert_eq!(
        (report.outcome, report.stdout.as_str()),
        (RunOutcome::Exited { code: 0 }, "3\n"),
        "{report:?}"
    );
    assert!(report.pids_limit_hit, "{report:?}");
}

#[tokio::test]
async fn network_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let script = format!(
        "import socket\n\
         try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    print('CONNECTED')\n\
         except OSError as e:\n    print('FAILED', e.errno)\n\
         try:\n    socket.create_connection(('1.1.1.1', 443), timeout=5)\n    print('CONNECTED')\n\
         except OSError as e:\n    print('FAILED', e.errno)\n"
    );
    let report = run(&spec("main.py", &script, &[PYTHON, "main.py"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(!report.stdout.contains("CONNECTED"), "{}", report.stdout);
    assert_eq!(
        report.stdout.matches("FAILED").count(),
        2,
        "{}",
        report.stdout
    );
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host listener"
    );
}

#[tokio::test]
async fn filesystem_is_read_only_except_work_and_secrets_are_absent() {
    let script = r#"
for path in ["/usr/evil", "/etc/evil", "/evil", "/bin/evil"]:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as e:
        print("DENIED", path)
try:
    open("/etc/shadow").read()
    print("READ /etc/shadow")
except OSError:
    print("NO SHADOW")
try:
    with open("/proc/sys/kernel/printk_ratelimit", "w") as f:
        f.write("5")
    print("WROTE SYSCTL")
except OSError:
    print("SYSCTL DENIED")
for path in ["/work/ok", "/tmp/ok", "/dev/shm/ok"]:
    open(path, "w").write("x")
    print("WRITABLE", path)
"#;
    let report = run(&spec("main.py", script, &[PYTHON, "main.py"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    let out = &report.stdout;
    assert!(!out.contains("WROTE"), "{out}");
    assert_eq!(out.matches("DENIED").count(), 5, "{out}");
    assert!(out.contains("NO SHADOW"), "{out}");
    assert_eq!(out.matches("WRITABLE").count(), 3, "{out}");
}

#[tokio::test]
async fn sandboxed_process_is_not_host_root() {
    let m = marker("uid");
    let s = spec(
        "main.sh",
        &format!("exec -a {m} sleep 100\n"),
        &["bash", "main.sh"],
    );
    let control = RunControl::default();
    let cancel = control.cancel.clone();
    let inspect = async {
        let pid = wait_for_host_pid(&m).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        cancel.cancel();
        status
    };
    let (report, status) = tokio::join!(run_with(&s, control.clone()), inspect);
    assert_eq!(report.outcome, RunOutcome::Cancelled);
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .filter_map(|u| u.parse().ok())
        .collect();
    assert_eq!(uids.len(), 4, "{uid_line}");
    for uid in uids {
        assert!(uid >= UID_BASE, "host uid {uid} in {uid_line}");
    }
}

#[tokio::test]
async fn environment_is_scrubbed() {
    let script = "import os\nprint(' '.join(sorted(os.environ)))\nprint(os.environ['MY_VAR'])\n";
    let mut s = spec("main.py", script, &[PYTHON, "main.py"]);
    s.env = vec![("MY_VAR".into(), "my value".into())];
    let report = run(&s).await;
    assert_eq!(
        report.stdout, "HOME LANG MY_VAR PATH PWD\nmy value\n",
        "{report:?}"
    );
}

#[tokio::test]
async fn dangerous_syscalls_are_filtered() {
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print("unshare", libc.unshare(0x10000000), ctypes.get_errno())
print("clone3", libc.syscall(435, 0, 0), ctypes.get_errno())
print("ptrace", libc.ptrace(0, 0, 0, 0), ctypes.get_errno())
"#;
    let report = run(&spec("main.py", script, &[PYTHON, "main.py"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    let eperm = libc::EPERM;
    let enosys = libc::ENOSYS;
    assert!(
        report.stdout.contains(&format!("unshare -1 {eperm}\n")),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains(&format!("clone3 -1 {enosys}\n")),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains(&format!("ptrace -1 {eperm}\n")),
        "{}",
        report.stdout
    );
}

#[tokio::test]
async fn busy_script_reports_cpu_and_peak_memory() {
    let script = "data = bytearray(40 * 1024 * 1024)\nx = 0\nfor i in range(3_000_000):\n    x += i\nprint(len(data))\n";
    let report = run(&spec("main.py", script, &[PYTHON, "main.py"])).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(
        report.cpu_user + report.cpu_system > Duration::ZERO,
        "{report:?}"
    );
    assert!(report.peak_memory_bytes >= 40 * 1024 * 1024, "{report:?}");
    assert!(!report.pids_limit_hit);
}

#[tokio::test]
async fn two_concurrent_runs_both_succeed() {
    let a = spec(
        "a.py",
        "import time\ntime.sleep(0.2)\nprint('a')\n",
        &[PYTHON, "a.py"],
    );
    let b = spec(
        "b.py",
        "import time\ntime.sleep(0.2)\nprint('b')\n",
        &[PYTHON, "b.py"],
    );
    let (ra, rb) = tokio::join!(run(&a), run(&b));
    assert_eq!(
        (ra.outcome, ra.stdout.as_str()),
        (RunOutcome::Exited { code: 0 }, "a\n")
    );
    assert_eq!(
        (rb.outcome, rb.stdout.as_str()),
        (RunOutcome::Exited { code: 0 }, "b\n")
    );
}

#[tokio::test]
async fn missing_bubblewrap_refuses_to_run() {
    let executor = LocalExecutor::start(SandboxConfig {
        bwrap: PathBuf::from("/nonexistent/bwrap"),
        uid_base: 354_000,
        ..SandboxConfig::default()
    })
    .await;
    let health = executor.health();
    assert!(!health.ready);
    assert_eq!(health.mode, "unavailable");
    assert!(health.detail.unwrap_or_default().contains("bubblewrap"));
    let err = executor
        .run(
            &spec("main.sh", "touch /work/x\n", &["bash", "main.sh"]),
            RunControl::default(),
        )
        .await
        .expect_err("must refuse");
    assert!(matches!(err, ExecError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn invalid_file_names_are_rejected() {
    let err = executor()
        .await
        .run(
            &spec("../x.sh", "true\n", &["bash", "x.sh"]),
            RunControl::default(),
        )
        .await
        .expect_err("must reject");
    assert!(matches!(err, ExecError::Internal(_)), "{err:?}");
}

/// Informational cost of one sandboxed `/bin/true` against a bare one:
/// `cargo test -p integr8s-sandbox --test e2e_sandbox -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn measure_bin_true_cost() {
    let executor = executor().await;
    let s = spec("t", "", &["/bin/true"]);
    let n = 40;
    let start = Instant::now();
    for _ in 0..n {
        let report = executor.run(&s, RunControl::default()).await.expect("run");
        assert_eq!(report.outcome, RunOutcome::Exited { code: 0 });
    }
    let sandboxed = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        let status = tokio::process::Command::new("/bin/true")
            .status()
            .await
            .expect("true");
        assert!(status.success());
    }
    let bare = start.elapsed() / n;
    println!("/bin/true: sandboxed {sandboxed:?} per run, bare {bare:?} per run");
}

#[tokio::test]
async fn without_cgroups_it_degrades_to_rlimits_and_says_so() {
    let executor = LocalExecutor::start(SandboxConfig {
        // No such cgroup can be created, so cgroups are unusable for this executor.
        cgroup_parent: Some(PathBuf::from("/no-such-parent/integr8s")),
        uid_base: 200_000,
        ..SandboxConfig::default()
    })
    .await;
    let health = executor.health();
    assert!(health.ready, "{health:?}");
    assert!(
        health.mode.starts_with("rlimits: userns+rlimits+seccomp+"),
        "{health:?}"
    );
    let detail = health.detail.unwrap_or_default();
    assert!(
        detail.contains(
            "cgroup v2 controller 'memory' is not delegated to /no-such-parent/integr8s; memory \
             limits fall back to RLIMIT_AS. Fix: Delegate=yes in the unit"
        ),
        "{detail}"
    );

    let hello = spec("main.py", "print('hi')\n", &[PYTHON, "main.py"]);
    let report = run_on(&executor, &hello, RunControl::default()).await;
    assert_eq!(
        (report.outcome, report.stdout.as_str()),
        (RunOutcome::Exited { code: 0 }, "hi\n")
    );

    let script = "try:\n    b = bytearray(512 * 1024 * 1024)\n    print('ALLOCATED')\nexcept MemoryError:\n    print('LIMITED')\n";
    let mut bomb = spec("main.py", script, &[PYTHON, "main.py"]);
    bomb.limits.memory_bytes = 128 * 1024 * 1024;
    let report = run_on(&executor, &bomb, RunControl::default()).await;
    assert_eq!(report.stdout, "LIMITED\n", "{report:?}");
}

#[tokio::test]
async fn only_stdio_fds_are_inherited() {
    let script = "import os\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd'))[:3], len(os.listdir('/proc/self/fd')))\n";
    let report = run(&spec("main.py", script, &[PYTHON, "main.py"])).await;
    // 0, 1, 2 plus the directory fd of the listing itself.
    assert_eq!(report.stdout, "[0, 1, 2] 4\n", "{report:?}");
}

#[tokio::test]
async fn stdin_is_fed_to_the_script_and_then_closed() {
    let mut s = spec(
        "main.py",
        "import sys\nsys.stdout.write(sys.stdin.read().upper())",
        &["/usr/bin/python3", "main.py"],
    );
    s.stdin = Some("hello\nworld\n".into());
    let r = run(&s).await;
    assert_eq!(r.outcome, RunOutcome::Exited { code: 0 }, "{r:?}");
    assert_eq!(r.stdout, "HELLO\nWORLD\n");

    // Without input the script sees end-of-file at once, not a hang.
    s.stdin = None;
    let r = run(&s).await;
    assert_eq!(r.outcome, RunOutcome::Exited { code: 0 }, "{r:?}");
    assert_eq!(r.stdout, "");
}

#[tokio::test]
async fn a_run_cpu_budget_stops_a_burner() {
    let mut s = spec(
        "main.py",
        "while True:\n    pass",
        &["/usr/bin/python3", "main.py"],
    );
    s.limits.cpu_time_ms = Some(500);
    let r = run(&s).await;
    assert_eq!(r.outcome, RunOutcome::CpuLimit, "{r:?}");
    assert!(
        r.cpu_user + r.cpu_system >= std::time::Duration::from_millis(400),
        "{r:?}"
    );
}

/// Host uid 0 is never a sandbox uid, whatever the configuration says: slot 0 of a pool
/// based at uid 0 would be root. The self-test refuses such a pool (and the launcher would
/// refuse to switch to uid 0 behind it), so nothing runs.
#[tokio::test]
async fn a_pool_based_at_uid_0_never_runs_anything_as_root() {
    let executor = LocalExecutor::start(SandboxConfig {
        uid_base: 0,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await;
    let health = executor.health();
    assert!(!health.ready, "{health:?}");
    let detail = health.detail.unwrap_or_default();
    assert!(detail.contains("root"), "{detail}");
    let spec = common::python("print(1)");
    let refused = executor.run(&spec, RunControl::default()).await;
    assert!(
        matches!(refused, Err(ExecError::Unavailable(_))),
        "{refused:?}"
    );
}

/// A script larger than the run's `/work` cannot be written: the run says so and exits 125
/// without running anything, and the sandbox still serves the next run with a fresh `/work`.
#[tokio::test]
async fn a_script_larger_than_work_is_refused_and_the_next_run_works() {
    let executor = ready_executor(SandboxConfig {
        work_size_bytes: 64 * 1024,
        uid_base: 350_000,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await;
    let big = format!("print('ran')\n#{}\n", "x".repeat(128 * 1024));
    let big = spec("main.py", &big, &[PYTHON, "main.py"]);
    let report = run_on(&executor, &big, RunControl::default()).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Exited { code: 125 },
        "{report:?}"
    );
    assert_eq!(report.stdout, "");
    assert!(
        report
            .stderr
            .contains("cannot write the script: No space left on device"),
        "{report:?}"
    );
    let fill = "open('/work/fill', 'w').write('y' * 40000)\nimport os\nprint(sorted(os.listdir('/work')))\n";
    let fill = spec("main.py", fill, &[PYTHON, "main.py"]);
    for _ in 0..2 {
        let report = run_on(&executor, &fill, RunControl::default()).await;
        assert_eq!(
            (report.outcome, report.stdout.as_str()),
            (RunOutcome::Exited { code: 0 }, "['fill', 'main.py']\n"),
            "{report:?}"
        );
    }
}

/// The smallest limits a request may ask for (one process, 1 MiB) apply to that run only (one
/// process of its own on top of the sandbox's; 1 MiB fails it), never to the slot: the next
/// runs, with ordinary limits, succeed.
#[tokio::test]
async fn tiny_limits_fail_their_run_not_the_next_ones() {
    let executor = ready_executor(SandboxConfig {
        uid_base: 352_000,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await;
    let hello = spec("main.py", "print('hi')\n", &[PYTHON, "main.py"]);
    // One process is enough for Python itself; 1 MiB is not, 16 MiB is (file cache that
    // earlier runs left charged to the slot's cgroup does not count against it).
    for (processes, memory, succeeds) in [
        (1, 64 << 20, true),
        (64, 1 << 20, false),
        (1, 1 << 20, false),
        (64, 16 << 20, true),
    ] {
        let mut tiny = hello.clone();
        tiny.limits.max_processes = processes;
        tiny.limits.memory_bytes = memory;
        let report = run_on(&executor, &tiny, RunControl::default()).await;
        assert_eq!(
            report.outcome == RunOutcome::Exited { code: 0 },
            succeeds,
            "{report:?}"
        );
        for _ in 0..3 {
            let report = run_on(&executor, &hello, RunControl::default()).await;
            assert_eq!(
                (report.outcome, report.stdout.as_str()),
                (RunOutcome::Exited { code: 0 }, "hi\n"),
                "after limits ({processes}, {memory}): {report:?}"
            );
        }
    }
}
