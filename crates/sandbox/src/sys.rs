//! The few raw system calls the supervisor needs: `posix_spawn` of the launcher and waiting
//! for it, memfds for data handed to bubblewrap, pipes, pidfds and signals.
//!
//! `unsafe` is allowed here (and only here) because these are FFI calls into libc.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// How bubblewrap is started for a slot (by the launcher, see `init/launch.rs`).
#[derive(Debug, Clone)]
pub(crate) struct ChildSetup {
    /// Opened `cgroup.procs` files to join by writing "0".
    pub cgroup_procs: Vec<RawFd>,
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

/// Sets or clears `O_NONBLOCK` on `fd`.
pub(crate) fn set_nonblocking(fd: &OwnedFd, nonblocking: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on an fd we own, with integer arguments.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, flags) })
}

/// Writes as much of `data` as `fd` (a pipe) takes without blocking; the fd is left
/// non-blocking (see [`set_nonblocking`]).
pub(crate) fn write_nonblocking(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    set_nonblocking(fd, true)?;
    let mut written = 0;
    while written < data.len() {
        let rest = &data[written..];
        // SAFETY: rest is a valid buffer of rest.len() bytes for the duration of the call.
        let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => break,
                _ => return Err(error),
            }
        }
        written += usize::try_from(n).unwrap_or(0);
    }
    Ok(written)
}

/// A connected pair of close-on-exec `SOCK_SEQPACKET` unix sockets (message boundaries, and
/// end-of-file when the other side is closed).
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds points to two writable ints.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one message of one byte carrying `fds` (`SCM_RIGHTS`) on `socket`; the receiver gets
/// its own copies. Never raises SIGPIPE: a closed peer is `EPIPE`.
pub(crate) fn send_fds(socket: &OwnedFd, fds: &[RawFd]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let data_len = std::mem::size_of_val(fds);
    let byte = [b'r'];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(u32::try_from(data_len).map_err(io::Error::other)?) };
    // u64 elements keep the buffer aligned for cmsghdr.
    let mut control = vec![0u64; (space as usize).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr().cast_mut().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the sendmsg call, and
    // the control buffer has room for one header with `data_len` bytes of data.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as usize;
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null() {
            return Err(io::Error::other("no room for the descriptors"));
        }
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(header), data_len);
        loop {
            let sent = libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
            if sent == 1 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if sent < 0 && error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(if sent < 0 {
                error
            } else {
                io::Error::other("short send")
            });
        }
    }
}

/// What `fd` holds right now, up to `max` bytes, without blocking (`fd` is made non-blocking).
/// One `read(2)` from a non-blocking `fd` into `buf`, whatever an async runtime believes about
/// its readiness: `WouldBlock` only when the kernel says so.
pub(crate) fn read_now(fd: &impl std::os::fd::AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid writable buffer of its length; the fd is borrowed for the call.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

pub(crate) fn read_available(fd: &OwnedFd, max: usize) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    if set_nonblocking(fd, true).is_err() {
        return out;
    }
    let mut buf = [0u8; 4096];
    while out.len() < max {
        // SAFETY: buf is a valid writable buffer of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n.min(max - out.len())]);
    }
    out
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

/// The children of `pid` (from `/proc/<pid>/task/*/children`).
pub(crate) fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// SIGKILLs every child of `pid`; returns whether there was one.
pub(crate) fn kill_children(pid: i32) -> bool {
    let children = children(pid);
    for &child in &children {
        kill_pid(child);
    }
    !children.is_empty()
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

/// A child started by [`spawn`]. Never reaped behind our back: waited for explicitly.
#[derive(Debug)]
pub(crate) struct Proc {
    pid: i32,
    status: Option<std::process::ExitStatus>,
}

impl Proc {
    pub(crate) fn id(&self) -> i32 {
        self.pid
    }

    fn wait_with(&mut self, flags: libc::c_int) -> io::Result<Option<std::process::ExitStatus>> {
        use std::os::unix::process::ExitStatusExt;
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: raw is a valid out-pointer; pid is our own unreaped child.
            let ret = unsafe { libc::waitpid(self.pid, &mut raw, flags) };
            if ret == self.pid {
                let status = std::process::ExitStatus::from_raw(raw);
                self.status = Some(status);
                return Ok(Some(status));
            }
            if ret == 0 {
                return Ok(None);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    /// Reaps the child if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.wait_with(libc::WNOHANG)
    }

    /// Blocks until the child exits and reaps it.
    pub(crate) fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        self.wait_with(0)?
            .ok_or_else(|| io::Error::other("waitpid returned without a status"))
    }

    /// SIGKILLs the child unless it was reaped (its pid may be reused after that).
    pub(crate) fn kill(&self) {
        if self.status.is_none() {
            kill_pid(self.pid);
        }
    }
}

/// A spawned child and our ends of its standard streams.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub proc: Proc,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// `fd` itself when it is above stderr, else a close-on-exec copy that is.
fn above_stderr(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl duplicates an fd we own; the result is a fresh fd or -1.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

fn spawn_check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Starts `program` with `argv` (argv[0] included) by `posix_spawn`: the child shares our
/// memory until it execs instead of copying the page tables of this (large, multi-threaded)
/// process, which a fork would do, making every thread of the service pay copy-on-write
/// faults afterwards. The environment is empty, the signal mask empty, every signal at its
/// default action, stdin/stdout/stderr fresh pipes, and each of `keep` (all above stderr)
/// inherited under its own number; every other descriptor of ours is close-on-exec already.
pub(crate) fn spawn(
    program: &CStr,
    argv: &[std::ffi::CString],
    keep: &[RawFd],
) -> io::Result<Spawned> {
    use std::os::fd::AsRawFd;
    if keep.iter().any(|fd| *fd <= 2) {
        return Err(io::Error::other(
            "inherited descriptors must be above stderr",
        ));
    }
    let (stdin_read, stdin_write) = blocking_pipe()?;
    let (stdout_read, stdout_write) = blocking_pipe()?;
    let (stderr_read, stderr_write) = blocking_pipe()?;
    let child_ends = [
        above_stderr(stdin_read)?,
        above_stderr(stdout_write)?,
        above_stderr(stderr_write)?,
    ];
    let mut pointers: Vec<*mut libc::c_char> = argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    pointers.push(std::ptr::null_mut());
    let env: [*mut libc::c_char; 1] = [std::ptr::null_mut()];

    // SAFETY: the file actions and attributes are initialised before use and destroyed
    // below; every pointer handed to posix_spawn (program, argv, env) is a valid
    // NUL-terminated string or array that outlives the call.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        spawn_check(libc::posix_spawn_file_actions_init(&mut actions))?;
        if let Err(e) = spawn_check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| -> io::Result<libc::pid_t> {
            for (target, fd) in child_ends.iter().enumerate() {
                spawn_check(libc::posix_spawn_file_actions_adddup2(
                    &mut actions,
                    fd.as_raw_fd(),
                    target as libc::c_int,
                ))?;
            }
            for &fd in keep {
                // dup2 onto itself clears FD_CLOEXEC in the child (glibc >= 2.29).
                spawn_check(libc::posix_spawn_file_actions_adddup2(&mut actions, fd, fd))?;
            }
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            spawn_check(libc::posix_spawnattr_setsigmask(&mut attr, &mask))?;
            let mut defaults: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut defaults);
            libc::sigdelset(&mut defaults, libc::SIGKILL);
            libc::sigdelset(&mut defaults, libc::SIGSTOP);
            spawn_check(libc::posix_spawnattr_setsigdefault(&mut attr, &defaults))?;
            spawn_check(libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            ))?;
            let mut pid: libc::pid_t = 0;
            spawn_check(libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                &actions,
                &attr,
                pointers.as_ptr(),
                env.as_ptr(),
            ))?;
            Ok(pid)
        })();
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
        let pid = result?;
        drop(child_ends);
        Ok(Spawned {
            proc: Proc { pid, status: None },
            stdin: stdin_write,
            stdout: stdout_read,
            stderr: stderr_read,
        })
    }
}
