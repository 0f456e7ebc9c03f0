//! Dangerous system calls, foreign syscall ABIs, setuid binaries, terminal injection and
//! kernel tunables.

use std::os::unix::fs::PermissionsExt;

use integr8s_core::ports::executor::RunOutcome;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};
use tokio::sync::OnceCell;

use crate::common::{bash, python, run, TempDir};

#[tokio::test]
async fn attack_ptrace_mount_unshare_keyctl_bpf_io_uring_perf_are_refused() {
    let calls = [
        ("ptrace", libc::SYS_ptrace, "0, 1, 0, 0"),
        ("mount", libc::SYS_mount, "b'none', b'/tmp', b'tmpfs', 0, 0"),
        ("unshare", libc::SYS_unshare, "0x10000000"),
        ("setns", libc::SYS_setns, "0, 0"),
        (
            "clone_newuser",
            libc::SYS_clone,
            "0x10000000 | 17, 0, 0, 0, 0",
        ),
        ("keyctl", libc::SYS_keyctl, "0, 0, 0, 0, 0"),
        ("add_key", libc::SYS_add_key, "b'user', b'k', b'v', 1, -1"),
        ("bpf", libc::SYS_bpf, "0, 0, 0"),
        (
            "io_uring_setup",
            libc::SYS_io_uring_setup,
            "8, ctypes.create_string_buffer(120)",
        ),
        (
            "perf_event_open",
            libc::SYS_perf_event_open,
            "ctypes.create_string_buffer(128), 0, -1, -1, 0",
        ),
        ("userfaultfd", libc::SYS_userfaultfd, "0"),
        (
            "process_vm_readv",
            libc::SYS_process_vm_readv,
            "1, 0, 0, 0, 0, 0",
        ),
    ];
    let mut script = String::from(
        "import ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n",
    );
    for (name, nr, args) in calls {
        script.push_str(&format!(
            "r = libc.syscall({nr}, {args})\nprint('{name}', r, errno.errorcode.get(ctypes.get_errno(), '0'))\n"
        ));
    }
    let report = run(&python(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout.lines().count(), calls.len(), "{report:?}");
    for line in report.stdout.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[1], "-1", "{line}: the call succeeded");
        assert!(
            parts[2] == "EPERM" || parts[2] == "ENOSYS",
            "{line}: refused with the wrong error"
        );
    }
}

#[tokio::test]
async fn attack_i386_int_0x80_is_killed_with_sigsys() {
    let script = "cat > /tmp/i386.c <<'EOF'\n\
         int main(void) {\n    long ret;\n    \
           __asm__ volatile (\"int $0x80\" : \"=a\"(ret) : \"a\"(20L));\n    \
           return ret > 0 ? 0 : 1;\n}\n\
         EOF\n\
         gcc -o /tmp/i386 /tmp/i386.c && exec /tmp/i386\n";
    let report = run(&bash(script)).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled {
            signal: libc::SIGSYS
        },
        "{report:?}"
    );
}

#[tokio::test]
async fn attack_x32_syscall_abi_is_killed_with_sigsys() {
    let script = "import ctypes\nlibc = ctypes.CDLL(None)\n\
         print('before', flush=True)\n\
         libc.syscall(0x40000000 | 39)\nprint('survived')\n";
    let report = run(&python(script)).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled {
            signal: libc::SIGSYS
        },
        "{report:?}"
    );
    assert_eq!(report.stdout, "before\n");
}

static SUID_DIR: OnceCell<(TempDir, LocalExecutor)> = OnceCell::const_new();

/// An executor whose sandbox contains a setuid-root copy of `id` at `/opt/suid/id`.
async fn suid_executor() -> &'static LocalExecutor {
    let (_, executor) = SUID_DIR
        .get_or_init(|| async {
            let dir = TempDir::new("suid");
            std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
            let id = dir.0.join("id");
            std::fs::copy("/usr/bin/id", &id).unwrap();
            std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
            let executor = LocalExecutor::start(SandboxConfig {
                // Slots of their own: two executors never share uids.
                uid_base: 346_000,
                extra_ro_binds: vec![(dir.0.clone(), "/opt/suid".into())],
                ..SandboxConfig::default()
            })
            .await;
            (dir, executor)
        })
        .await;
    executor
}

#[tokio::test]
async fn attack_setuid_root_binary_does_not_give_root() {
    use integr8s_core::ports::executor::{Executor, RunControl};
    let executor = suid_executor().await;
    assert!(executor.health().ready, "{:?}", executor.health());
    let script = "ls -l /opt/suid/id | cut -c1-4\n\
         /opt/suid/id -u\n/opt/suid/id -ru\n\
         grep NoNewPrivs /proc/self/status\n\
         su -c id root </dev/null >/dev/null 2>&1 && echo su-worked\n\
         echo done\n";
    let report = executor
        .run(&bash(script), RunControl::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(
        report.stdout, "-rws\n1000\n1000\nNoNewPrivs:\t1\ndone\n",
        "{report:?}"
    );
}

#[tokio::test]
async fn attack_tiocsti_terminal_injection_is_refused() {
    let script = "import fcntl, os, termios, errno\n\
         master, slave = os.openpty()\n\
         os.setsid()\n\
         try:\n    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)\n\
         except OSError:\n    pass\n\
         for fd in (0, 1, slave):\n    \
           try:\n        fcntl.ioctl(fd, termios.TIOCSTI, b'x')\n        print('injected')\n    \
           except OSError as e:\n        print(errno.errorcode[e.errno])\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "EPERM\nEPERM\nEPERM\n", "{report:?}");
}

#[tokio::test]
async fn attack_writes_under_proc_sys_fail() {
    let tunables = [
        "/proc/sys/kernel/printk_ratelimit",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/vm/drop_caches",
        "/proc/sys/kernel/hostname",
    ];
    let before: Vec<String> = tunables
        .iter()
        .map(|t| std::fs::read_to_string(t).unwrap_or_default())
        .collect();
    let mut script = String::new();
    for t in tunables {
        script.push_str(&format!("(echo 3 > {t}) 2>/dev/null && echo wrote {t}\n"));
    }
    script.push_str("echo done\n");
    let report = run(&bash(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "done\n", "{report:?}");
    for (t, old) in tunables.iter().zip(before) {
        assert_eq!(std::fs::read_to_string(t).unwrap_or_default(), old, "{t}");
    }
}

/// Each run mounts a `/proc` of its own pid namespace; its kernel knobs stay covered by
/// read-only binds (as bubblewrap's `/proc` had), besides landlock and the unmapped root.
#[tokio::test]
async fn attack_proc_kernel_knobs_are_read_only_mounts() {
    let script = "import os\n\
         mounts = {}\n\
         for line in open('/proc/self/mountinfo'):\n\
         \x20   fields = line.split()\n\
         \x20   mounts[fields[4]] = fields[5].split(',')[0]\n\
         for path in ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus']:\n\
         \x20   if os.path.exists(path):\n        print(path, mounts.get(path))\n\
         print('proc', mounts.get('/proc'), sorted(os.listdir('/proc/self/task')) == [str(os.getpid())])\n";
    let report = run(&crate::common::python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert!(lines.contains(&"/proc/sys ro"), "{report:?}");
    for line in &lines[..lines.len() - 1] {
        assert!(line.ends_with(" ro"), "{line} in {report:?}");
    }
    assert_eq!(lines.last(), Some(&"proc rw True"), "{report:?}");
}
