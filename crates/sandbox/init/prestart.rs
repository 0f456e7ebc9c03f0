//! Interpreters started ahead of their runs (see the runtime registry's `[runtime.prestart]`):
//! a waiting run init starts the one a prestart spec names, inside the run's isolation, and
//! hands it the run's streams if the job that arrives is the run it was started for (run.rs).
//! Also the one way a run's command (or such an interpreter) is built.

use std::ffi::OsString;
use std::fs::File;
use std::os::raw::c_int;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::ffi::{dup2, fcntl, signal, socketpair, SIG_DFL};
use crate::job::{Job, Rlimit};
use crate::{read_job, set_rlimit, IGNORED_SIGNALS};

const RLIMIT_CPU: c_int = 0;
const RLIMIT_NPROC: c_int = 6;
const RLIMIT_AS: c_int = 9;
const AF_UNIX: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = 0o2_000_000;
const F_SETFD: c_int = 2;

/// An interpreter started ahead of the run (see job.rs): what it was started for, its pid,
/// and our end of the socket it waits on for the run's streams.
pub struct Prestarted {
    pub spec: Job,
    pub pid: c_int,
    pub socket: OwnedFd,
}

/// The descriptor the prestarted interpreter waits on (see the runtime registry).
const PRESTART_FD: c_int = 3;

/// Starts the interpreter a prestart spec names, inside this run's isolation, with the run's
/// environment and limits and `/dev/null` as its streams; `None` when the spec is not one or
/// the start fails (the run then starts its command as usual).
pub fn prestart(spec: OwnedFd) -> Option<Prestarted> {
    let spec = read_job(File::from(spec)).ok()?;
    if spec.prestart.is_empty() {
        return None;
    }
    let mut pair = [-1 as c_int; 2];
    // SAFETY: pair is a valid out-array of two descriptors.
    if unsafe { socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: socketpair returned two new descriptors nothing else owns.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let theirs_fd = theirs.as_raw_fd();
    let mut command = command_for(&spec.prestart, spec.env.clone(), spec.rlimits.clone());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: runs in the child between fork and exec; dup2 and fcntl with integers only.
    unsafe {
        command.pre_exec(move || {
            // dup2 gives the copy no close-on-exec flag; a socket already at 3 loses it here.
            let ok = if theirs_fd == PRESTART_FD {
                fcntl(PRESTART_FD, F_SETFD, 0) == 0
            } else {
                dup2(theirs_fd, PRESTART_FD) == PRESTART_FD
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = command.spawn().ok()?;
    drop(theirs);
    Some(Prestarted {
        spec,
        pid: child.id() as c_int,
        socket: ours,
    })
}

/// The command of a run (or of its prestarted interpreter): `argv` with `env` added, the
/// signals the shim ignores back to their defaults and `rlimits` applied before exec.
pub fn command_for(argv: &[Vec<u8>], env: Vec<(Vec<u8>, Vec<u8>)>, rlimits: Vec<Rlimit>) -> Command {
    let argv: Vec<OsString> = argv.iter().cloned().map(OsString::from_vec).collect();
    let mut command = Command::new(argv.first().cloned().unwrap_or_default());
    command.args(argv.iter().skip(1));
    for (key, value) in env {
        command.env(OsString::from_vec(key), OsString::from_vec(value));
    }
    // SAFETY: the hook runs in the child of this single-threaded process between fork
    // and exec, and only makes system calls with integer or valid pointer arguments.
    unsafe {
        command.pre_exec(move || {
            for sig in IGNORED_SIGNALS {
                signal(sig, SIG_DFL);
            }
            for &limit in &rlimits {
                let (resource, value) = match limit {
                    Rlimit::Cpu(v) => (RLIMIT_CPU, v),
                    Rlimit::AddressSpace(v) => (RLIMIT_AS, v),
                    Rlimit::Processes(v) => (RLIMIT_NPROC, v),
                };
                if set_rlimit(resource, value) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
}

