//! Launcher mode of the shim binary: the few privileged steps between the service and
//! bubblewrap, in a small single-threaded process of their own.
//!
//! The service starts it with `posix_spawn` (no copy of the service's memory, unlike a fork
//! of a large multi-threaded process), still as the service's user, with the descriptors
//! bubblewrap needs already in place. Usage:
//!
//! `sandbox-init --launch STATUS_FD CGROUP_FDS KEEP_FDS IDS PARENT_PID BWRAP [ARGS...]`
//!
//! CGROUP_FDS and KEEP_FDS are comma-separated descriptor numbers (or `-`), IDS is `UID:GID`
//! (or `-` to keep ours), PARENT_PID the service's pid. In order, it:
//! 1. joins the run cgroup by writing `0` to each CGROUP_FDS (`cgroup.procs` files);
//! 2. starts a new session, caps core dumps (0) and open files (256);
//! 3. drops every supplementary group and switches to IDS (never root: the caller passes an
//!    unprivileged pair whenever it runs as root);
//! 4. gives up if the service is already gone. It arms no parent-death signal: bubblewrap's
//!    `--die-with-parent` does, once its child no longer waits for it. Killed earlier (by a
//!    signal armed here, when the service dies), bubblewrap would leave that child blocked for
//!    ever on its start-up handshake. A waiting sandbox whose service died gets
//!    end-of-file on its control socket and exits;
//! 5. marks every descriptor above stderr except KEEP_FDS close-on-exec, and execs BWRAP with
//!    an empty environment.
//!
//! A failing step writes `launch-error <step>: <error>` to STATUS_FD (the status pipe the
//! supervisor reads) and exits with 127.

use crate::ffi::{close, execve, getppid, setgroups, setresgid, setresuid, setsid, write};
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Write;
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;

const RLIMIT_CORE: c_int = 4;
const RLIMIT_NOFILE: c_int = 7;

fn fds(arg: &OsString) -> Option<Vec<c_int>> {
    let text = std::str::from_utf8(arg.as_bytes()).ok()?;
    if text == "-" {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|f| f.parse().ok().filter(|fd| *fd > 2))
        .collect()
}

fn ids(arg: &OsString) -> Option<Option<(u32, u32)>> {
    let text = std::str::from_utf8(arg.as_bytes()).ok()?;
    if text == "-" {
        return Some(None);
    }
    let (uid, gid) = text.split_once(':')?;
    Some(Some((uid.parse().ok()?, gid.parse().ok()?)))
}

fn check(step: &str, ret: c_int) -> Result<(), String> {
    if ret < 0 {
        return Err(format!("{step}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn setup(
    cgroup_fds: &[c_int],
    keep: &[c_int],
    ids: Option<(u32, u32)>,
    parent: c_int,
) -> Result<(), String> {
    for &fd in cgroup_fds {
        // SAFETY: writes one byte from a static buffer to a descriptor handed to us.
        let written = unsafe { write(fd, b"0".as_ptr(), 1) };
        if written != 1 {
            return Err(format!(
                "joining the run cgroup: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the descriptor is ours and not used again.
        unsafe { close(fd) };
    }
    // SAFETY: plain syscalls with integer arguments or valid pointers.
    unsafe {
        check("setsid", setsid())?;
        check("RLIMIT_CORE", crate::set_rlimit(RLIMIT_CORE, 0))?;
        check("RLIMIT_NOFILE", crate::set_rlimit(RLIMIT_NOFILE, 256))?;
        if let Some((uid, gid)) = ids {
            if uid == 0 || gid == 0 {
                return Err("refusing to run the sandbox as root".into());
            }
            check("setgroups", setgroups(0, std::ptr::null()))?;
            check("setresgid", setresgid(gid, gid, gid))?;
            check("setresuid", setresuid(uid, uid, uid))?;
        }
        if getppid() != parent {
            return Err("the service is gone".into());
        }
    }
    crate::cloexec_above_stderr(keep);
    Ok(())
}

/// Runs the launcher; returns only on failure, with the exit code.
pub fn run(args: &[OsString]) -> u8 {
    let parsed = (|| {
        let status: c_int = std::str::from_utf8(args.first()?.as_bytes())
            .ok()?
            .parse()
            .ok()?;
        Some((
            status,
            fds(args.get(1)?)?,
            fds(args.get(2)?)?,
            ids(args.get(3)?)?,
            std::str::from_utf8(args.get(4)?.as_bytes())
                .ok()?
                .parse::<c_int>()
                .ok()?,
            args.get(5..).filter(|rest| !rest.is_empty())?,
        ))
    })();
    let Some((status_fd, cgroup_fds, keep, ids, parent, command)) = parsed else {
        eprintln!("usage: sandbox-init --launch STATUS_FD CGROUP_FDS KEEP_FDS IDS PARENT_PID BWRAP [ARGS...]");
        return 127;
    };
    let result: Result<(), String> = setup(&cgroup_fds, &keep, ids, parent).and_then(|()| {
        let argv: Vec<CString> = command
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| "NUL in an argument".to_owned()))
            .collect::<Result<_, _>>()?;
        let mut pointers: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        pointers.push(std::ptr::null());
        let env: [*const c_char; 1] = [std::ptr::null()];
        // SAFETY: argv and env are NUL-terminated arrays of valid C strings that outlive the
        // call; execve only returns on failure.
        unsafe { execve(argv[0].as_ptr(), pointers.as_ptr(), env.as_ptr()) };
        Err(format!(
            "exec {}: {}",
            command[0].to_string_lossy(),
            std::io::Error::last_os_error()
        ))
    });
    if let Err(message) = result {
        // SAFETY: the status descriptor was handed to us; the File closes it on exit.
        let mut status = unsafe { File::from_raw_fd(status_fd) };
        let _ = writeln!(status, "launch-error {message}");
        eprintln!("sandbox-launch: {message}");
    }
    127
}
