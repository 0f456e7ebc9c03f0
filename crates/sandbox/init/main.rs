//! The sandbox's init shim: pid 1 of the sandbox's pid namespace (`bwrap --as-pid-1`), serving
//! one run after another.
//!
//! Usage: `sandbox-init CONTROL_FD STATUS_FD SECCOMP_FD WORK,TMP,SHM`. Bubblewrap starts the
//! shim when the sandbox is prepared, with the capabilities CAP_SYS_ADMIN, CAP_NET_ADMIN and
//! CAP_SETPCAP of the sandbox's own user namespace (nothing on the host). The same binary also
//! starts bubblewrap itself: `sandbox-init --launch ...` (see launch.rs).
//!
//! At start it reads the seccomp program from SECCOMP_FD. Then, for each run (run.rs):
//! 1. It clones the run's init into new pid, mount, network and IPC namespaces, before the
//!    run is asked for. As pid 1 of the run's pid namespace, the run init isolates itself
//!    (isolate.rs): fresh size-capped tmpfs on `/work` and `/tmp`, a read-only `/dev` of its
//!    own with a new devpts and a fresh `/dev/shm` (dev.rs), and a `/proc`
//!    of its own (nothing of an earlier run is visible; kernel knobs under `/proc` bound
//!    read-only), the loopback brought up, every capability dropped (bounding and ambient
//!    sets too), landlock (write only below those directories, no TCP, scoped signals and
//!    abstract sockets) and the seccomp allow-list last.
//! 2. The run init then waits on CONTROL_FD (a unix socket; end-of-file: the supervisor
//!    retired the sandbox, and the shim exits) for the run's descriptors: the job pipe and
//!    the script's stdin, stdout and stderr. It says `landlock <abi>` on STATUS_FD (the run is
//!    taken), reads the job (job.rs), writes the script into its `/work`, starts the command
//!    with the job's rlimits, reaps every process of the run until the command has ended,
//!    and exits, which ends the run's pid namespace and every process left in it.
//! 3. Once the run init is reaped nothing of the run is alive and all its output is in the
//!    pipes: the shim writes `exit <code>` or `signal <n>` (the command's wait status, left by
//!    the run init in a shared page) to STATUS_FD, and clones the next run init.
//!
//! A failing isolation step is reported as `launch-error <step>: <error>` and the shim exits:
//! the supervisor retires the sandbox. A run never sees the shim: it has a pid
//! namespace of its own, and the shim's descriptors are close-on-exec. The shim is not
//! dumpable, and it ignores the catchable termination signals; as the sandbox's init it gets
//! no signal from inside the sandbox it has no handler for. A run's init inherits both.
//!
//! Built by the sandbox crate's build script with the standard library only; every system
//! call is a plain FFI call with integer or valid pointer arguments. It skips the Rust
//! runtime's start-up (`no_main`: no stack-guard probing, which reads /proc/self/maps) and is
//! linked static, non-PIE.

#![no_main]

mod dev;
mod fdpass;
mod ffi;
mod isolate;
#[allow(dead_code)] // The encoder is the supervisor's.
mod job;
mod landlock;
mod launch;
mod prestart;
mod run;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::raw::{c_int, c_long};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;

use ffi::{fcntl, prctl, signal, syscall, SIG_IGN};
use job::Job;

extern "C" {
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
/// SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM.
const IGNORED_SIGNALS: [c_int; 8] = [1, 2, 3, 10, 12, 13, 14, 15];
/// Largest seccomp program the kernel takes (`BPF_MAXINSNS`), in bytes.
const MAX_SECCOMP_BYTES: usize = 4096 * 8;

/// Writes one status line; nothing useful can be done if the supervisor stopped listening.
fn report(status: &mut File, line: &str) {
    let _ = status.write_all(line.as_bytes());
}

fn fd_arg(arg: Option<&OsString>) -> Option<c_int> {
    std::str::from_utf8(arg?.as_bytes())
        .ok()?
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
}

/// `WORK,TMP,SHM` tmpfs sizes in bytes.
fn sizes_arg(arg: Option<&OsString>) -> Option<[u64; 3]> {
    let text = std::str::from_utf8(arg?.as_bytes()).ok()?;
    let mut sizes = text.split(',').map(|s| s.parse::<u64>().ok());
    let parsed = [sizes.next()??, sizes.next()??, sizes.next()??];
    sizes.next().is_none().then_some(parsed)
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

/// Marks every descriptor above stderr close-on-exec, except `keep`.
fn cloexec_above_stderr(keep: &[c_int]) {
    // SAFETY: plain integer arguments.
    unsafe {
        if syscall(
            SYS_CLOSE_RANGE,
            3 as c_long,
            c_long::from(u32::MAX),
            CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            for fd in 3..1024 {
                fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
        }
        for &fd in keep {
            fcntl(fd, F_SETFD, 0);
        }
    }
}

/// Reads the seccomp program from `fd` (which this process owns) and closes it.
fn read_seccomp(fd: c_int) -> Result<Vec<u8>, String> {
    // SAFETY: the supervisor handed this fd to us for this purpose; the File closes it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    let mut program = Vec::new();
    file.read_to_end(&mut program)
        .map_err(|e| format!("reading the seccomp program: {e}"))?;
    if program.is_empty() || program.len() % 8 != 0 || program.len() > MAX_SECCOMP_BYTES {
        return Err(format!(
            "malformed seccomp program ({} bytes)",
            program.len()
        ));
    }
    Ok(program)
}

/// Reads and parses a job from `file` to its end.
fn read_job(mut file: File) -> Result<Job, String> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| format!("reading the job: {e}"))?;
    Job::parse(&data)
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
    let (Some(control), Some(status_fd), Some(seccomp_fd), Some(sizes)) = (
        fd_arg(args.first()),
        fd_arg(args.get(1)),
        fd_arg(args.get(2)),
        sizes_arg(args.get(3)),
    ) else {
        eprintln!("usage: sandbox-init CONTROL_FD STATUS_FD SECCOMP_FD WORK,TMP,SHM");
        return 125;
    };
    // SAFETY: plain integer arguments; the status fd was handed to us by the supervisor and
    // is owned by this process from here on.
    let mut status = unsafe {
        prctl(
            PR_SET_DUMPABLE,
            0 as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        );
        prctl(
            PR_SET_NO_NEW_PRIVS,
            1 as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        );
        for sig in IGNORED_SIGNALS {
            signal(sig, SIG_IGN);
        }
        File::from_raw_fd(status_fd)
    };
    // Nothing the shim holds (its own memfd, the control socket, the status pipe) may reach a
    // script: every fd above stderr is close-on-exec.
    cloexec_above_stderr(&[]);
    let seccomp = match read_seccomp(seccomp_fd) {
        Ok(program) => program,
        Err(e) => {
            report(&mut status, &format!("launch-error {e}\n"));
            return 125;
        }
    };
    let Some(sandbox) = run::Sandbox::new(sizes, seccomp, landlock::landlock_abi(), &status) else {
        report(
            &mut status,
            "launch-error cannot map the shared result page\n",
        );
        return 125;
    };
    loop {
        match sandbox.serve(control) {
            run::Served::Report(lines) => report(&mut status, &lines),
            run::Served::Quiet => {}
            // Retired (end-of-file on the control socket), or broken (already reported).
            run::Served::Stop => return 0,
        }
    }
}
