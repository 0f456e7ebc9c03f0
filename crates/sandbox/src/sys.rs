//! The few raw system calls the supervisor needs: the child setup that runs between fork and
//! exec, memfds for data handed to bubblewrap, and signals.
//!
//! `unsafe` is allowed here (and only here) because these are FFI calls into libc and because
//! `pre_exec` itself is an unsafe contract: the hook runs in the forked child of a
//! multi-threaded process, where only async-signal-safe calls are sound.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Everything the forked child does before it execs bubblewrap. Built (and allocated) in the
/// parent; the hook only reads it.
#[derive(Debug, Clone)]
pub(crate) struct ChildSetup {
    /// Opened `cgroup.procs` files to join by writing "0".
    pub cgroup_procs: Vec<RawFd>,
    /// Close-on-exec fds that bubblewrap must inherit (script, seccomp programs).
    pub inherit: Vec<RawFd>,
    /// Host uid/gid to switch to; `None` keeps ours (only when we are not root).
    pub ids: Option<(u32, u32)>,
    /// Our pid, to detect that the parent died before PDEATHSIG was armed.
    pub parent_pid: i32,
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads a valid, initialised rlimit struct; async-signal-safe.
    check(unsafe { libc::setrlimit(resource, &limit) })
}

/// `LANDLOCK_CREATE_RULESET_VERSION` from linux/landlock.h.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// The highest landlock ABI the kernel offers:
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`, as the raw return
/// value and, when it is negative, `errno`.
pub(crate) fn landlock_abi_version() -> (libc::c_long, i32) {
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the kernel reads no
    // memory and creates no fd; it only returns a number.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    let errno = if ret < 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    (ret, errno)
}

/// `CLOSE_RANGE_CLOEXEC` from linux/close_range.h.
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Marks every fd above stderr close-on-exec, so nothing the service inherited or leaked
/// without `O_CLOEXEC` reaches the sandbox (bubblewrap passes open fds through).
fn mark_all_cloexec() {
    // SAFETY: close_range takes plain integers and only changes fd flags of this process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return;
    }
    // Kernels before 5.11: walk a bounded range; EBADF for unused numbers is expected.
    for fd in 3..4096 {
        // SAFETY: fcntl on an arbitrary fd number is harmless; it fails with EBADF if unused.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

impl ChildSetup {
    /// Runs in the child between fork and exec: no allocation, no locks, only raw syscalls.
    fn apply(&self) -> io::Result<()> {
        for &fd in &self.cgroup_procs {
            // SAFETY: fd is an open cgroup.procs file owned by the parent's RunCgroup, which
            // outlives the spawn; the buffer is a static byte string.
            let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if written != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: plain syscalls without pointer arguments.
        unsafe {
            check(libc::setsid())?;
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ))?;
            if libc::getppid() != self.parent_pid {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        set_limit(libc::RLIMIT_CORE, 0)?;
        set_limit(libc::RLIMIT_NOFILE, 256)?;
        mark_all_cloexec();
        for &fd in &self.inherit {
            // SAFETY: fd is open in the parent (kept alive until the spawn returns); clearing
            // FD_CLOEXEC only affects this child's copy.
            check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        }
        if let Some((uid, gid)) = self.ids {
            // SAFETY: setgroups with size 0 does not read the pointer; the id calls take
            // plain integers. Order matters: groups and gid first, while still privileged.
            unsafe {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setresgid(gid, gid, gid))?;
                check(libc::setresuid(uid, uid, uid))?;
            }
        }
        Ok(())
    }
}

/// Installs the setup as the command's pre-exec hook.
pub(crate) fn install_child_setup(cmd: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook only calls async-signal-safe syscalls (write, setsid, prctl, getppid,
    // setrlimit, fcntl, setgroups, setres[gu]id) on data prepared before the fork, and builds
    // errors with `from_raw_os_error`/`last_os_error`, which do not allocate.
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
}

/// A close-on-exec memfd holding `data`, positioned at its start.
pub(crate) fn memfd_with(name: &CStr, data: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid NUL-terminated string; the flags are constants.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = File::from(owned);
    file.write_all(data)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(OwnedFd::from(file))
}

/// A close-on-exec memfd holding `data`, sealed against every change, that can be executed
/// (`MFD_EXEC` where the kernel knows it, for hosts with `vm.memfd_noexec = 1`).
pub(crate) fn sealed_memfd(name: &CStr, data: &[u8]) -> io::Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: name is a valid NUL-terminated string; the flags are constants.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable anyway.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = File::from(owned);
    file.write_all(data)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl with integer arguments on our own fd.
    check(unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::F_ADD_SEALS,
            seals,
        )
    })?;
    Ok(OwnedFd::from(file))
}

/// A close-on-exec, non-blocking pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds points to two writable ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: pipe2 returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec pipe whose ends block: (read end, write end). For the init shim's job,
/// which it reads with blocking reads.
pub(crate) fn blocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds points to two writable ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A non-blocking pidfd of our child `pid`; it becomes readable when the child exits.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a fresh fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks until the child `pid` has exited (it stays unreaped) or `timeout` passed; true
/// when it exited. Without pidfds it reports false at once.
pub(crate) fn wait_exit(pid: i32, timeout: std::time::Duration) -> bool {
    let Ok(fd) = pidfd_open(pid) else {
        return false;
    };
    let mut poll = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes one valid pollfd; the fd stays open across the call.
    let ready = unsafe { libc::poll(&mut poll, 1, ms) };
    ready == 1
}

/// [`pidfd_open`] registered with the current tokio reactor.
pub(crate) fn async_pidfd(pid: i32) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    let fd = pidfd_open(pid)?;
    // SAFETY: an OwnedFd is a valid open fd that stays open, and keeps the same number,
    // until the AsyncFd that owns it is dropped.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// SIGKILLs one process; errors (already gone) are ignored.
pub(crate) fn kill_pid(pid: i32) {
    if pid > 0 {
        // SAFETY: kill takes plain integers.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// SIGKILLs every child of `pid` (from `/proc/<pid>/task/*/children`); returns whether there
/// was one.
pub(crate) fn kill_children(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            kill_pid(child);
            any = true;
        }
    }
    any
}

/// SIGKILLs a process group; errors (already gone) are ignored.
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill takes plain integers; a negative pid addresses the group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Our effective uid.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Our effective gid.
pub(crate) fn effective_gid() -> u32 {
    // SAFETY: getegid has no arguments and cannot fail.
    unsafe { libc::getegid() }
}
