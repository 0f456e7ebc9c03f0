//! Preparing a sandbox ahead of its run: the launcher (spawned with `posix_spawn`) joins the
//! slot's cgroup, switches to the slot's uid and execs bubblewrap with its whole command line,
//! so it creates the namespaces and mounts and starts the init shim, which then blocks reading
//! its job pipe. Everything costly about a start (the cgroup v1 migration with its RCU grace
//! period, namespace and mount setup, loading bubblewrap and the shim) is paid before the run
//! is asked for; releasing it only writes the job and stdin into two pipes.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::args::BwrapArgs;
use crate::sys::{self, ChildSetup, Proc};

/// What a prepared sandbox was started with; a run can only use one prepared the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchKey {
    pub bwrap: PathBuf,
    pub ids: Option<(u32, u32)>,
    /// Whether the process joined a cgroup before exec.
    pub cgroup: bool,
}

/// A prepared sandbox waiting for its job. Dropping it unused kills and reaps it.
#[derive(Debug)]
pub(crate) struct Launch {
    pub key: LaunchKey,
    child: Option<Proc>,
    pid: i32,
    /// Our ends of its stdin, stdout and stderr.
    stdio: Option<(OwnedFd, OwnedFd, OwnedFd)>,
    job: Option<OwnedFd>,
    status: Option<OwnedFd>,
}

/// The serialised seccomp programs, built once.
fn seccomp_programs() -> io::Result<&'static [Vec<u8>]> {
    static PROGRAMS: OnceLock<Result<Vec<Vec<u8>>, String>> = OnceLock::new();
    PROGRAMS
        .get_or_init(|| crate::seccomp::programs().map_err(|e| e.to_string()))
        .as_deref()
        .map_err(|e| io::Error::other(e.clone()))
}

fn c_string(s: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::other("NUL byte in a bubblewrap argument"))
}

fn fd_list(fds: &[RawFd]) -> String {
    if fds.is_empty() {
        return "-".into();
    }
    fds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts bubblewrap through the launcher (`sandbox-init --launch`, see `init/launch.rs`),
/// which joins the slot's cgroup, switches to the slot's ids and execs bubblewrap. Blocks
/// only for the spawn itself; a failing launcher step is reported on the status pipe.
/// The calling thread must outlive the process (its death SIGKILLs it).
pub(crate) fn spawn(key: LaunchKey, setup: ChildSetup, args: &BwrapArgs) -> io::Result<Launch> {
    let seccomp: Vec<OwnedFd> = seccomp_programs()?
        .iter()
        .map(|p| sys::memfd_with(c"seccomp", p))
        .collect::<Result<_, _>>()?;
    let (job_read, job_write) = sys::blocking_pipe()?;
    let (status_read, status_write) = sys::pipe()?;
    let seccomp_fds: Vec<_> = seccomp.iter().map(AsRawFd::as_raw_fd).collect();
    let mut keep = seccomp_fds.clone();
    keep.extend([job_read.as_raw_fd(), status_write.as_raw_fd(), args.init_fd]);

    let launcher = c_string(crate::init::InitMemfd::path_inside(args.init_fd))?;
    let mut argv = vec![
        c_string("sandbox-launch")?,
        c_string("--launch")?,
        c_string(status_write.as_raw_fd().to_string())?,
        c_string(fd_list(&setup.cgroup_procs))?,
        c_string(fd_list(&keep))?,
        c_string(match setup.ids {
            Some((uid, gid)) => format!("{uid}:{gid}"),
            None => "-".into(),
        })?,
        c_string(setup.parent_pid.to_string())?,
        c_string(key.bwrap.as_os_str().as_bytes())?,
    ];
    for arg in args.command_line(&seccomp_fds, status_write.as_raw_fd(), job_read.as_raw_fd()) {
        argv.push(c_string(arg)?);
    }
    let mut inherited = keep;
    inherited.extend(&setup.cgroup_procs);
    let spawned = sys::spawn(&launcher, &argv, &inherited)?;
    // The child has its own copies now; ours close here.
    drop((seccomp, job_read, status_write));
    Ok(Launch {
        key,
        pid: spawned.proc.id(),
        child: Some(spawned.proc),
        stdio: Some((spawned.stdin, spawned.stdout, spawned.stderr)),
        job: Some(job_write),
        status: Some(status_read),
    })
}

impl Launch {
    /// Whether the process is still waiting (not exited, e.g. killed with its spawner).
    pub(crate) fn alive(&self) -> bool {
        // A zombie (exited, not reaped) is no longer in state R, S or D; kill(0) alone would
        // still succeed on it, so look at the process state.
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|stat| {
                let state = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .next()?
                    .to_owned();
                Some(!matches!(state.as_str(), "Z" | "X" | "x"))
            })
            .unwrap_or(false)
    }

    /// Hands the waiting shim its job (see `init/job.rs`) and the script's stdin, and returns
    /// the sandbox as running. The pipes are written from a blocking thread, so a large job
    /// or stdin cannot stall the runtime; a failed write shows up as the shim failing.
    pub(crate) fn release(mut self, job: Vec<u8>, stdin: Vec<u8>) -> io::Result<Running> {
        let (Some(child), Some((stdin_pipe, stdout, stderr)), Some(job_pipe), Some(status)) = (
            self.child.take(),
            self.stdio.take(),
            self.job.take(),
            self.status.take(),
        ) else {
            return Err(io::Error::other("launch already used"));
        };
        let running = Running::new(child, self.pid, status, Some(stdout), Some(stderr))?;
        // The usual job fits in the pipe and there is no stdin: write it here, without a hop
        // to a blocking thread on the run's critical path. Closing the job pipe gives the
        // shim end-of-file: the job is complete.
        let job_written = sys::write_nonblocking(&job_pipe, &job).unwrap_or(0);
        if job_written == job.len() && stdin.is_empty() {
            return Ok(running);
        }
        tokio::task::spawn_blocking(move || {
            let job_rest = job.get(job_written..).unwrap_or_default();
            if sys::set_nonblocking(&job_pipe, false).is_ok()
                && std::fs::File::from(job_pipe).write_all(job_rest).is_ok()
            {
                // Blocks while the script does not read; ends with the run at the latest
                // (EPIPE). Dropping the pipe gives the script end-of-file.
                let _ = std::fs::File::from(stdin_pipe).write_all(&stdin);
            }
        });
        Ok(running)
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            reap_in_background(child);
        }
    }
}

/// How long bubblewrap gets to exit after its sandbox's pid 1 was killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Kills a sandbox from the inside out and reaps it (blocking). Its pid 1 (bubblewrap's
/// child) is killed first, which takes the whole pid namespace with it; bubblewrap reaps it
/// and exits on its own. Killing bubblewrap first would leave that child, killed by its
/// parent-death signal, to the host's init, which may never reap it (and so never release
/// its share of the slot's process limit). Bubblewrap itself is killed only if it has no
/// child yet or does not exit in time.
pub(crate) fn kill_and_reap(mut child: Proc) {
    let pid = child.id();
    if !(sys::kill_children(pid) && sys::wait_exit(pid, EXIT_GRACE)) {
        sys::kill_group(pid);
        child.kill();
    }
    let _ = child.wait();
}

fn reap_in_background(child: Proc) {
    let spawned = std::thread::Builder::new()
        .name("sandbox-reaper".into())
        .spawn(move || kill_and_reap(child));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a reaper thread; a zombie may remain");
    }
}

/// A released bubblewrap: its output pipes, its status pipe and an async wait.
#[derive(Debug)]
pub(crate) struct Running {
    child: Option<Proc>,
    pub pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// The init shim's status lines (see [`crate::init::parse_status`]).
    pub status_pipe: Option<tokio::net::unix::pipe::Receiver>,
    pub stdout: Option<tokio::net::unix::pipe::Receiver>,
    pub stderr: Option<tokio::net::unix::pipe::Receiver>,
    exit: Option<ExitStatus>,
}

impl Running {
    fn new(
        child: Proc,
        pid: i32,
        status: OwnedFd,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> io::Result<Self> {
        let receiver = |fd: Option<OwnedFd>| {
            fd.map(tokio::net::unix::pipe::Receiver::from_owned_fd)
                .transpose()
        };
        Ok(Running {
            pidfd: sys::async_pidfd(pid).ok(),
            child: Some(child),
            pid,
            status_pipe: receiver(Some(status))?,
            stdout: receiver(stdout)?,
            stderr: receiver(stderr)?,
            exit: None,
        })
    }

    /// Waits for bubblewrap to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.exit {
                return Ok(status);
            }
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| io::Error::other("no child"))?;
            if let Some(status) = child.try_wait()? {
                self.exit = Some(status);
                continue;
            }
            match &self.pidfd {
                Some(pidfd) => pidfd.readable().await?.clear_ready(),
                // Kernels without pidfd: poll.
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// Takes the bubblewrap process out, neither killed nor reaped: its shim reported the end
    /// of the run, so it is exiting on its own. `None` when it was reaped already.
    pub(crate) fn take_exiting(&mut self) -> Option<Proc> {
        if self.exit.is_some() {
            return None;
        }
        self.child.take()
    }

    /// Kills the sandbox from the inside out (see [`kill_and_reap`]) and waits for
    /// bubblewrap, unless it was already reaped.
    pub(crate) async fn kill(&mut self) -> io::Result<ExitStatus> {
        if self.exit.is_none()
            && sys::kill_children(self.pid)
            && tokio::time::timeout(EXIT_GRACE, self.wait()).await.is_ok()
        {
            return self.wait().await;
        }
        if self.exit.is_none() {
            sys::kill_group(self.pid);
            if let Some(child) = self.child.as_ref() {
                child.kill();
            }
        }
        self.wait().await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Some(child) = self.child.take() {
                reap_in_background(child);
            }
        }
    }
}
