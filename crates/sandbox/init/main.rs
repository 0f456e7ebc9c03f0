//! The sandbox's init shim: pid 1 of the sandbox's pid namespace (`bwrap --as-pid-1`).
//!
//! Usage: `sandbox-init STATUS_FD JOB_FD`. Bubblewrap starts the shim when the sandbox is
//! prepared, before a run is asked for; the shim then waits for its job (see job.rs). The
//! same binary also starts bubblewrap itself: `sandbox-init --launch ...` (see launch.rs).
//!
//! 1. Reads the job from JOB_FD to its end (the supervisor writes it when the run starts).
//! 2. Writes the script into `/work` (a new file, never through an existing path).
//! 3. Builds a landlock ruleset when the kernel supports it (defence in depth behind the
//!    read-only mounts and the network namespace): read and execute anywhere, write only in
//!    `/work`, `/tmp`, `/dev/shm` and to the standard devices, no TCP bind or connect (ABI 4),
//!    and no signals or abstract unix sockets outside the script's own domain (ABI 6).
//! 4. Starts the command with the job's environment and rlimits, restricted by that ruleset,
//!    and reaps every process of the namespace (orphans are re-parented to pid 1) until the
//!    command itself has ended.
//! 5. Kills what is left in the namespace (daemons the script started), reaps it, and only
//!    then writes `landlock <abi>` and `exit <code>` or `signal <n>` to STATUS_FD: once the
//!    supervisor reads that line no process of the run is alive and all its output is in the
//!    pipes. Exits like a shell would (the code, or 128+N).
//!
//! The shim is not dumpable, so the script cannot reach its descriptors through /proc; as the
//! namespace's init it receives no signal from the script that it has no handler for, and it
//! ignores the catchable termination signals anyway.
//!
//! Built by the sandbox crate's build script with the standard library only; every system
//! call below is a plain FFI call with integer or valid pointer arguments. It is exec'd twice
//! per run, so it skips the Rust runtime's start-up (`no_main`: no stack-guard probing, which
//! reads /proc/self/maps) and is linked static, non-PIE.

#![no_main]

#[allow(dead_code)] // The encoder is the supervisor's.
mod job;
mod landlock;
mod launch;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::raw::{c_int, c_long};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use job::{Job, Rlimit};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn prctl(option: c_int, ...) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn setrlimit(resource: c_int, limit: *const RlimitValue) -> c_int;
}

/// `close_range(2)` and its flag marking the range close-on-exec.
const SYS_CLOSE_RANGE: c_long = 436;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

#[repr(C)]
struct RlimitValue {
    current: u64,
    max: u64,
}

const F_SETFD: c_int = 2;
const FD_CLOEXEC: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
const PR_SET_NO_NEW_PRIVS: c_int = 38;
const O_NOFOLLOW: c_int = 0o400_000;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SIGKILL: c_int = 9;
const EINTR: i32 = 4;
const RLIMIT_CPU: c_int = 0;
const RLIMIT_NPROC: c_int = 6;
const RLIMIT_AS: c_int = 9;
/// SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM.
const IGNORED_SIGNALS: [c_int; 7] = [1, 2, 3, 10, 12, 14, 15];
/// Where the script is written.
const WORK_DIR: &str = "/work";

fn report(status: &mut Option<File>, line: &str) {
    if let Some(file) = status {
        // Nothing useful can be done if the supervisor stopped listening.
        let _ = file.write_all(line.as_bytes());
    }
}

fn fd_arg(arg: Option<&OsString>) -> Option<c_int> {
    std::str::from_utf8(arg?.as_bytes())
        .ok()?
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
}

/// Reads and parses the job from `fd` (which this process owns) to its end.
fn read_job(fd: c_int) -> Result<Job, String> {
    // SAFETY: the supervisor handed this fd to us for this purpose; nothing else uses it, and
    // the File closes it when dropped below.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| format!("reading the job: {e}"))?;
    Job::parse(&data)
}

/// Creates the script file; `O_EXCL | O_NOFOLLOW`, so no existing entry is ever followed.
fn write_script(job: &Job) -> std::io::Result<()> {
    let mut path = OsString::from(WORK_DIR).into_vec();
    path.push(b'/');
    path.extend_from_slice(&job.file_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .custom_flags(O_NOFOLLOW)
        .open(OsString::from_vec(path))?;
    file.write_all(&job.script)
}

/// Sets both the soft and the hard limit; returns the raw syscall result.
fn set_rlimit(resource: c_int, value: u64) -> c_int {
    let value = RlimitValue {
        current: value,
        max: value,
    };
    // SAFETY: a valid rlimit struct living across the call.
    unsafe { setrlimit(resource, &value) }
}

fn apply_rlimit(limit: Rlimit) -> std::io::Result<()> {
    let (resource, value) = match limit {
        Rlimit::Cpu(v) => (RLIMIT_CPU, v),
        Rlimit::AddressSpace(v) => (RLIMIT_AS, v),
        Rlimit::Processes(v) => (RLIMIT_NPROC, v),
    };
    if set_rlimit(resource, value) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor above stderr close-on-exec, except `keep`.
fn cloexec_above_stderr(keep: &[c_int]) {
    // SAFETY: plain integer arguments.
    unsafe {
        if syscall(SYS_CLOSE_RANGE, 3 as c_long, c_long::from(u32::MAX), CLOSE_RANGE_CLOEXEC) != 0 {
            for fd in 3..1024 {
                fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
        }
        for &fd in keep {
            fcntl(fd, F_SETFD, 0);
        }
    }
}

/// Reaps processes until `main` has ended; returns its wait status (`None`: no such child).
fn reap_until(main: c_int) -> Option<c_int> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { waitpid(-1, &mut status, 0) };
        if pid == main {
            return Some(status);
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            return None;
        }
    }
}

/// Kills every other process of the namespace and reaps them all.
fn kill_and_reap_rest() {
    // SAFETY: plain integers; as pid 1, kill(-1) reaches every process of our namespace
    // except ourselves, and nothing outside it.
    unsafe {
        kill(-1, SIGKILL);
    }
    loop {
        // SAFETY: a NULL status pointer is allowed.
        let pid = unsafe { waitpid(-1, std::ptr::null_mut(), 0) };
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            break;
        }
    }
}

fn run(job: Job, status: &mut Option<File>) -> u8 {
    if let Err(e) = write_script(&job) {
        eprintln!("sandbox-init: cannot write the script: {e}");
        return 125;
    }
    let abi = landlock::landlock_abi();
    let ruleset = landlock::landlock_ruleset(abi);
    report(
        status,
        &format!("landlock {}\n", if ruleset.is_some() { abi } else { 0 }),
    );

    let argv: Vec<OsString> = job.argv.into_iter().map(OsString::from_vec).collect();
    let program = argv[0].clone();
    let mut command = Command::new(&program);
    command.args(&argv[1..]);
    for (key, value) in job.env {
        command.env(OsString::from_vec(key), OsString::from_vec(value));
    }
    let rlimits = job.rlimits;
    // SAFETY: the hook runs in the single-threaded child between fork and exec and only makes
    // async-signal-safe system calls with integer or valid pointer arguments.
    unsafe {
        command.pre_exec(move || {
            for sig in IGNORED_SIGNALS {
                signal(sig, SIG_DFL);
            }
            for &limit in &rlimits {
                apply_rlimit(limit)?;
            }
            if let Some(ruleset) = ruleset {
                if syscall(landlock::SYS_LANDLOCK_RESTRICT_SELF, ruleset as c_long, 0u32) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let (line, code) = match command.spawn() {
        Ok(child) => {
            let raw = reap_until(child.id() as c_int);
            kill_and_reap_rest();
            match raw.map(ExitStatus::from_raw) {
                Some(exit) => match (exit.code(), exit.signal()) {
                    (Some(code), _) => (format!("exit {code}\n"), code),
                    (None, Some(sig)) => (format!("signal {sig}\n"), 128 + sig),
                    (None, None) => ("exit 255\n".to_owned(), 255),
                },
                None => ("exit 255\n".to_owned(), 255),
            }
        }
        Err(e) => {
            eprintln!("{}: {e}", program.to_string_lossy());
            kill_and_reap_rest();
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            (format!("exit {code}\n"), code)
        }
    };
    report(status, &line);
    u8::try_from(code).unwrap_or(255)
}

/// The C entry point (see the module docs); the standard library still has the arguments.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const std::os::raw::c_char) -> c_int {
    c_int::from(init_main())
}

fn init_main() -> u8 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--launch") {
        return launch::run(&args[1..]);
    }
    let (Some(status_fd), Some(job_fd)) = (fd_arg(args.first()), fd_arg(args.get(1))) else {
        eprintln!("usage: sandbox-init STATUS_FD JOB_FD");
        return 125;
    };
    // SAFETY: plain integer arguments; the status fd was handed to us by the supervisor and
    // is owned by this process from here on.
    let mut status = unsafe {
        prctl(PR_SET_DUMPABLE, 0 as c_long, 0 as c_long, 0 as c_long, 0 as c_long);
        prctl(PR_SET_NO_NEW_PRIVS, 1 as c_long, 0 as c_long, 0 as c_long, 0 as c_long);
        for sig in IGNORED_SIGNALS {
            signal(sig, SIG_IGN);
        }
        (fcntl(status_fd, F_SETFD, FD_CLOEXEC) == 0).then(|| File::from_raw_fd(status_fd))
    };
    // Nothing the shim inherited (its own memfd, the job and status pipes) may reach the
    // script: every fd above stderr is close-on-exec.
    cloexec_above_stderr(&[]);
    let job = match read_job(job_fd) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("sandbox-init: {e}");
            return 125;
        }
    };
    run(job, &mut status)
}
