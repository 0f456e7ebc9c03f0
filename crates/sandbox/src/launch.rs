//! Preparing a sandbox ahead of its runs: the launcher (spawned with `posix_spawn`) joins the
//! slot's cgroup, switches to the slot's uid and execs bubblewrap with its whole command line,
//! so it creates the namespaces and mounts and starts the init shim, which then waits on its
//! control socket. Everything costly about a start (the cgroup v1 migration with its RCU grace
//! period, namespace and mount setup, loading bubblewrap and the shim) is paid once per
//! sandbox, not per run: a sandbox serves its slot's runs one after another, each run in
//! fresh namespaces and tmpfs of its own (see `init/run.rs`). Releasing a run sends the
//! sandbox (its waiting run init) the run's pipes and writes the job and stdin into two of
//! them.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::args::{BwrapArgs, ShimFds};
use crate::sys::{self, ChildSetup, Proc};

/// What a prepared sandbox was started with; a run can only use one prepared the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchKey {
    pub bwrap: PathBuf,
    pub ids: Option<(u32, u32)>,
    /// Whether the process joined a cgroup before exec.
    pub cgroup: bool,
}

/// bubblewrap's own standard streams (our ends): its error messages, should it fail.
#[derive(Debug)]
struct BwrapStdio {
    _stdin: OwnedFd,
    _stdout: OwnedFd,
    stderr: OwnedFd,
}

/// A sandbox waiting for its next run. Dropping it kills and reaps it.
#[derive(Debug)]
pub(crate) struct Launch {
    pub key: LaunchKey,
    child: Option<Proc>,
    pid: i32,
    /// Our end of the shim's control socket.
    control: OwnedFd,
    /// The shim's status pipe (read end, non-blocking), shared by all its runs; lent to the
    /// [`Running`] of each run.
    status: Option<OwnedFd>,
    stdio: BwrapStdio,
    /// The prestart spec this sandbox's waiting run was sent (see [`Launch::prestart`]).
    pub prestarted: Option<Arc<[u8]>>,
}

/// The serialised seccomp program, built once.
fn seccomp_program() -> io::Result<&'static [u8]> {
    static PROGRAM: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| crate::seccomp::program().map_err(|e| e.to_string()))
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
    let seccomp = sys::memfd_with(c"seccomp", seccomp_program()?)?;
    let (control, shim_control) = sys::seqpacket_pair()?;
    let (status_read, status_write) = sys::pipe()?;
    let shim = ShimFds {
        control: shim_control.as_raw_fd(),
        status: status_write.as_raw_fd(),
        seccomp: seccomp.as_raw_fd(),
    };
    let keep = [shim.control, shim.status, shim.seccomp, args.init_fd];

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
    for arg in args.command_line(shim) {
        argv.push(c_string(arg)?);
    }
    let mut inherited = keep.to_vec();
    inherited.extend(&setup.cgroup_procs);
    let spawned = sys::spawn(&launcher, &argv, &inherited)?;
    // The child has its own copies now; ours close here.
    drop((seccomp, shim_control, status_write));
    Ok(Launch {
        key,
        pid: spawned.proc.id(),
        child: Some(spawned.proc),
        control,
        status: Some(status_read),
        stdio: BwrapStdio {
            _stdin: spawned.stdin,
            _stdout: spawned.stdout,
            stderr: spawned.stderr,
        },
        prestarted: None,
    })
}

impl Launch {
    /// Whether the sandbox can still take a run: neither bubblewrap nor its child (the shim,
    /// once started) has exited, e.g. been killed.
    pub(crate) fn alive(&self) -> bool {
        running(self.pid) && sys::children(self.pid).into_iter().all(running)
    }

    /// Asks the waiting run to start the interpreter `spec` names (a job without its script,
    /// see `init/job.rs`) ahead of its job: sends it a pipe holding the spec. The run uses the
    /// interpreter only if its job matches the spec; otherwise the interpreter is killed when
    /// the job arrives. At most one per waiting run (a second is ignored by the shim).
    pub(crate) fn prestart(&mut self, spec: Arc<[u8]>) -> io::Result<()> {
        if self.prestarted.is_some() {
            return Ok(());
        }
        let (spec_read, spec_pipe) = sys::blocking_pipe()?;
        // A spec is a few KiB at most: it fits in the pipe, so the write cannot block.
        if sys::write_nonblocking(&spec_pipe, &spec)? != spec.len() {
            return Err(io::Error::other("the prestart spec does not fit in a pipe"));
        }
        drop(spec_pipe);
        sys::send_fds(&self.control, &[spec_read.as_raw_fd()])?;
        self.prestarted = Some(spec);
        Ok(())
    }

    /// Hands the waiting sandbox a run: sends it the job pipe and the script's stdin, stdout and
    /// stderr, writes the job (see `init/job.rs`) and the stdin, and returns the sandbox as
    /// running. A large job or stdin is written from a blocking thread, so it cannot stall
    /// the runtime; a failed write shows up as the run failing.
    pub(crate) fn release(mut self, job: &[u8], stdin: &[u8]) -> io::Result<Running> {
        // The run takes the interpreter started ahead (or has it killed): the sandbox's next
        // waiting run has none.
        self.prestarted = None;
        let (job_read, job_pipe) = sys::blocking_pipe()?;
        let (stdin_read, stdin_pipe) = sys::blocking_pipe()?;
        let (stdout, stdout_write) = sys::blocking_pipe()?;
        let (stderr, stderr_write) = sys::blocking_pipe()?;
        sys::send_fds(
            &self.control,
            &[
                job_read.as_raw_fd(),
                stdin_read.as_raw_fd(),
                stdout_write.as_raw_fd(),
                stderr_write.as_raw_fd(),
            ],
        )?;
        // The shim has its own copies now (or will not run at all).
        drop((job_read, stdin_read, stdout_write, stderr_write));
        let running = Running::new(self, stdout, stderr)?;
        // The usual job fits in the pipe and there is no stdin: write it here, without a hop
        // to a blocking thread on the run's critical path. Closing the job pipe gives the
        // shim end-of-file: the job is complete.
        let job_written = sys::write_nonblocking(&job_pipe, job).unwrap_or(0);
        if job_written == job.len() && stdin.is_empty() {
            return Ok(running);
        }
        let job_rest = job.get(job_written..).unwrap_or_default().to_vec();
        let stdin = stdin.to_vec();
        tokio::task::spawn_blocking(move || {
            if sys::set_nonblocking(&job_pipe, false).is_ok()
                && std::fs::File::from(job_pipe).write_all(&job_rest).is_ok()
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

/// Whether process `pid` exists and has not exited. A zombie (exited, not reaped) is no longer
/// in state R, S or D; kill(0) alone would still succeed on it, so look at the process state.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
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

/// A sandbox serving a run: the run's output pipes, the shim's status pipe and an async wait
/// for bubblewrap.
#[derive(Debug)]
pub(crate) struct Running {
    launch: Launch,
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// The init shim's status lines (see [`crate::init::parse_status`]). The supervisor
    /// gives it back when the shim reported the end of the run.
    pub status_pipe: Option<tokio::net::unix::pipe::Receiver>,
    pub stdout: Option<tokio::net::unix::pipe::Receiver>,
    pub stderr: Option<tokio::net::unix::pipe::Receiver>,
    exit: Option<ExitStatus>,
}

impl Running {
    fn new(mut launch: Launch, stdout: OwnedFd, stderr: OwnedFd) -> io::Result<Self> {
        use tokio::net::unix::pipe::Receiver;
        if launch.child.is_none() {
            return Err(io::Error::other("the sandbox is gone"));
        }
        let status = launch
            .status
            .take()
            .ok_or_else(|| io::Error::other("the sandbox has no status pipe"))?;
        Ok(Running {
            pidfd: sys::async_pidfd(launch.pid).ok(),
            status_pipe: Some(Receiver::from_owned_fd(status)?),
            stdout: Some(Receiver::from_owned_fd(stdout)?),
            stderr: Some(Receiver::from_owned_fd(stderr)?),
            exit: None,
            launch,
        })
    }

    /// Waits for bubblewrap to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.exit {
                return Ok(status);
            }
            let child = self
                .launch
                .child
                .as_mut()
                .ok_or_else(|| io::Error::other("no child"))?;
            if let Some(status) = child.try_wait()? {
                self.exit = Some(status);
                // Reaped: its pid may be reused, nothing may signal it any more.
                self.launch.child = None;
                continue;
            }
            match &self.pidfd {
                Some(pidfd) => pidfd.readable().await?.clear_ready(),
                // Kernels without pidfd: poll.
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// The sandbox, waiting for its next run again: only when bubblewrap was not reaped and the
    /// status pipe was given back (the shim reported the end of this run).
    pub(crate) fn into_idle(mut self) -> Option<Launch> {
        if self.exit.is_some() || self.launch.child.is_none() {
            return None;
        }
        let status = self.status_pipe.take()?.into_nonblocking_fd().ok()?;
        self.launch.status = Some(status);
        Some(self.launch)
    }

    /// bubblewrap's pid.
    pub(crate) fn pid(&self) -> i32 {
        self.launch.pid
    }

    /// What bubblewrap itself wrote to its stderr (why a sandbox failed to start), without
    /// waiting.
    pub(crate) fn bwrap_messages(&self) -> String {
        let text = sys::read_available(&self.launch.stdio.stderr, 16 * 1024);
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Kills the sandbox from the inside out (see [`kill_and_reap`]) and waits for
    /// bubblewrap, unless it was already reaped.
    pub(crate) async fn kill(&mut self) -> io::Result<ExitStatus> {
        let pid = self.launch.pid;
        if self.exit.is_none()
            && sys::kill_children(pid)
            && tokio::time::timeout(EXIT_GRACE, self.wait()).await.is_ok()
        {
            return self.wait().await;
        }
        if self.exit.is_none() {
            sys::kill_group(pid);
            if let Some(child) = self.launch.child.as_ref() {
                child.kill();
            }
        }
        self.wait().await
    }
}
