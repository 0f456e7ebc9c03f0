//! The sandbox's init shim: the first program bubblewrap starts inside the sandbox.
//!
//! Usage: `sandbox-init STATUS_FD PROGRAM [ARGS...]`, or `sandbox-init STATUS_FD --argv-fd FD`
//! to read PROGRAM and its arguments NUL-separated from FD (read to its end, then closed, so
//! a bubblewrap started before its run can take the command late).
//!
//! 1. Builds a landlock ruleset when the kernel supports it (defence in depth behind the
//!    read-only mounts and the network namespace): read and execute anywhere, write only in
//!    `/work`, `/tmp`, `/dev/shm` and to the standard devices, no TCP bind or connect (ABI 4),
//!    and no signals or abstract unix sockets outside the script's own domain (ABI 6).
//! 2. Starts PROGRAM, restricted by that ruleset, and waits for it.
//! 3. Writes `landlock <abi>` and then `exit <code>` or `signal <n>` to STATUS_FD, so the
//!    supervisor learns the real signal (bubblewrap itself reports a signal N as 128+N), and
//!    exits like a shell would (the code, or 128+N).
//!
//! The shim is not dumpable, so the script cannot reach its status descriptor through /proc,
//! and it ignores the catchable termination signals the script could send it.
//!
//! Built by the sandbox crate's build script with the standard library only; every system
//! call below is a plain FFI call with integer or valid pointer arguments.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn prctl(option: c_int, ...) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn close(fd: c_int) -> c_int;
}

const F_SETFD: c_int = 2;
const FD_CLOEXEC: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const O_PATH: c_int = 0o10_000_000;
const O_CLOEXEC: c_int = 0o2_000_000;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
/// SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM.
const IGNORED_SIGNALS: [c_int; 7] = [1, 2, 3, 10, 12, 14, 15];

const SYS_LANDLOCK_CREATE_RULESET: c_long = 444;
const SYS_LANDLOCK_ADD_RULE: c_long = 445;
const SYS_LANDLOCK_RESTRICT_SELF: c_long = 446;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
/// Everything of ABI 1: execute, read, write, and creating or removing any kind of entry.
const FS_ABI1: u64 = (1 << 13) - 1;
const FS_REFER: u64 = 1 << 13;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Directories the script may write below.
const WRITABLE_DIRS: [&str; 3] = ["/work", "/tmp", "/dev/shm"];
/// Devices (and the pseudo-terminal tree) the script may open for writing.
const WRITABLE_DEVICES: [&str; 8] = [
    "/dev/ptmx",
    "/dev/pts",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The kernel's landlock ABI version, or 0 without landlock.
fn landlock_abi() -> i64 {
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only queries the version.
    let abi = unsafe {
        syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}

fn add_path_rule(ruleset: c_int, path: &str, access: u64) {
    let Ok(c_path) = CString::new(path) else {
        return;
    };
    // SAFETY: c_path is a valid NUL-terminated string.
    let fd = unsafe { open(c_path.as_ptr(), O_PATH | O_CLOEXEC) };
    if fd < 0 {
        return; // Absent paths need no rule.
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: fd,
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr living across the call; fd is ours.
    unsafe {
        syscall(
            SYS_LANDLOCK_ADD_RULE,
            ruleset as c_long,
            LANDLOCK_RULE_PATH_BENEATH as c_long,
            &attr as *const PathBeneathAttr,
            0u32,
        );
        close(fd);
    }
}

/// Builds the ruleset; returns its close-on-exec fd, or `None` when landlock is unusable.
fn landlock_ruleset(abi: i64) -> Option<c_int> {
    if abi < 1 {
        return None;
    }
    let mut fs = FS_ABI1;
    if abi >= 2 {
        fs |= FS_REFER;
    }
    if abi >= 3 {
        fs |= FS_TRUNCATE;
    }
    if abi >= 5 {
        fs |= FS_IOCTL_DEV;
    }
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: if abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        },
        scoped: if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    // The attribute grew with the ABI: 8 bytes up to 3, 16 for 4 and 5, 24 from 6 on.
    let size: usize = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    };
    // SAFETY: attr is valid for `size` bytes (size never exceeds the struct).
    let ruleset = unsafe { syscall(SYS_LANDLOCK_CREATE_RULESET, &attr as *const RulesetAttr, size, 0u32) };
    if ruleset < 0 {
        return None;
    }
    let ruleset = ruleset as c_int;
    add_path_rule(ruleset, "/", FS_EXECUTE | FS_READ_FILE | FS_READ_DIR);
    for dir in WRITABLE_DIRS {
        add_path_rule(ruleset, dir, fs & !FS_IOCTL_DEV);
    }
    let device = FS_READ_FILE | FS_WRITE_FILE | (fs & (FS_TRUNCATE | FS_IOCTL_DEV));
    for dev in WRITABLE_DEVICES {
        add_path_rule(ruleset, dev, device);
    }
    Some(ruleset)
}

fn report(status: &mut Option<File>, line: &str) {
    if let Some(file) = status {
        // Nothing useful can be done if the supervisor stopped listening.
        let _ = file.write_all(line.as_bytes());
    }
}

/// Reads a NUL-separated argument vector from `fd` (which this process owns) to its end.
fn argv_from_fd(fd: &std::ffi::OsStr) -> Option<Vec<std::ffi::OsString>> {
    use std::io::Read;
    use std::os::unix::ffi::OsStringExt;
    let fd: c_int = std::str::from_utf8(fd.as_bytes()).ok()?.parse().ok()?;
    if fd <= 2 {
        return None;
    }
    // SAFETY: the supervisor handed this fd to us for this purpose; nothing else uses it, and
    // the File closes it when dropped below.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let mut data = Vec::new();
    file.read_to_end(&mut data).ok()?;
    drop(file);
    let data = data.strip_suffix(b"\0").unwrap_or(&data);
    Some(data.split(|b| *b == 0).map(|a| std::ffi::OsString::from_vec(a.to_vec())).collect())
}

fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.len() == 3 && args[1] == "--argv-fd" {
        match argv_from_fd(&args[2]) {
            Some(argv) if !argv.is_empty() && !argv[0].is_empty() => {
                args.truncate(1);
                args.extend(argv);
            }
            _ => {
                eprintln!("sandbox-init: no command on the argument fd");
                return ExitCode::from(125);
            }
        }
    }
    let (Some(fd_arg), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: sandbox-init STATUS_FD PROGRAM [ARGS...]");
        return ExitCode::from(125);
    };
    let status_fd: Option<c_int> = std::str::from_utf8(fd_arg.as_bytes())
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|fd| *fd > 2);
    // SAFETY: plain integer arguments; the status fd was handed to us by the supervisor and
    // is owned by this process from here on.
    let mut status = unsafe {
        prctl(PR_SET_DUMPABLE, 0 as c_long, 0 as c_long, 0 as c_long, 0 as c_long);
        prctl(PR_SET_NO_NEW_PRIVS, 1 as c_long, 0 as c_long, 0 as c_long, 0 as c_long);
        for sig in IGNORED_SIGNALS {
            signal(sig, SIG_IGN);
        }
        status_fd
            .filter(|&fd| fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
            .map(|fd| File::from_raw_fd(fd))
    };

    let abi = landlock_abi();
    let ruleset = landlock_ruleset(abi);
    report(
        &mut status,
        &format!("landlock {}\n", if ruleset.is_some() { abi } else { 0 }),
    );

    let mut command = Command::new(program);
    command.args(&args[2..]);
    // SAFETY: the hook runs in the single-threaded child between fork and exec and only makes
    // async-signal-safe system calls with integer arguments.
    unsafe {
        command.pre_exec(move || {
            for sig in IGNORED_SIGNALS {
                signal(sig, SIG_DFL);
            }
            if let Some(ruleset) = ruleset {
                if syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset as c_long, 0u32) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let line;
    let code = match command.status() {
        Ok(exit) => match (exit.code(), exit.signal()) {
            (Some(code), _) => {
                line = format!("exit {code}\n");
                code
            }
            (None, Some(sig)) => {
                line = format!("signal {sig}\n");
                128 + sig
            }
            (None, None) => {
                line = "exit 255\n".to_owned();
                255
            }
        },
        Err(e) => {
            eprintln!("{}: {e}", program.to_string_lossy());
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            line = format!("exit {code}\n");
            code
        }
    };
    report(&mut status, &line);
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}
