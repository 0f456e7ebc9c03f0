//! Starting bubblewrap ahead of its run: the process is forked, joined to the slot's cgroup,
//! switched to the slot's uid and exec'd, then blocks reading its argument vector from a
//! pipe (`bwrap --args FD`). The costly part of a start (fork of the service, the cgroup v1
//! migration with its RCU grace period, loading bubblewrap) is thus paid before the run is
//! asked for; releasing it only writes the arguments and the script into two pipes.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::sys::{self, ChildSetup};

/// What a waiting bubblewrap was prepared with; a run can only use one prepared the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchKey {
    pub bwrap: PathBuf,
    pub ids: Option<(u32, u32)>,
    pub rlimit_as: Option<u64>,
    pub rlimit_nproc: Option<u64>,
    pub rlimit_cpu: Option<u64>,
    /// Whether the process joined a cgroup before exec.
    pub cgroup: bool,
}

/// Fd numbers as bubblewrap sees them, for its argument vector.
#[derive(Debug, Clone)]
pub(crate) struct LaunchFds {
    pub script: RawFd,
    /// Read by the init shim: the command, NUL-separated.
    pub command: RawFd,
    pub status: RawFd,
    pub seccomp: Vec<RawFd>,
}

/// A bubblewrap process waiting for its arguments. Dropping it unused kills and reaps it.
#[derive(Debug)]
pub(crate) struct Launch {
    pub key: LaunchKey,
    pub fds: LaunchFds,
    child: Option<Child>,
    pid: i32,
    args: Option<OwnedFd>,
    script: Option<OwnedFd>,
    command: Option<OwnedFd>,
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

/// Forks and execs `bwrap --args FD` with `setup` applied in the child (`cgroup_procs` and
/// the ids included). Blocks for the fork, the cgroup join and the exec: call it off the
/// async runtime. The calling thread must outlive the process (its death SIGKILLs it).
pub(crate) fn spawn(key: LaunchKey, mut setup: ChildSetup) -> io::Result<Launch> {
    let seccomp: Vec<OwnedFd> = seccomp_programs()?
        .iter()
        .map(|p| sys::memfd_with(c"seccomp", p))
        .collect::<Result<_, _>>()?;
    let (args_read, args_write) = sys::blocking_pipe()?;
    let (script_read, script_write) = sys::blocking_pipe()?;
    let (command_read, command_write) = sys::blocking_pipe()?;
    let (status_read, status_write) = sys::pipe()?;
    let fds = LaunchFds {
        script: script_read.as_raw_fd(),
        command: command_read.as_raw_fd(),
        status: status_write.as_raw_fd(),
        seccomp: seccomp.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    setup.inherit = fds.seccomp.clone();
    setup
        .inherit
        .extend([args_read.as_raw_fd(), fds.script, fds.command, fds.status]);
    let mut cmd = std::process::Command::new(&key.bwrap);
    // bubblewrap takes options from --args but the command only from its own command line.
    cmd.arg("--args")
        .arg(args_read.as_raw_fd().to_string())
        .args(["--", crate::init::PATH_INSIDE])
        .arg(fds.status.to_string())
        .arg("--argv-fd")
        .arg(fds.command.to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sys::install_child_setup(&mut cmd, setup);
    let child = cmd.spawn()?;
    // The child has its own copies now; ours close here.
    drop((seccomp, args_read, script_read, command_read, status_write));
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    Ok(Launch {
        key,
        fds,
        child: Some(child),
        pid,
        args: Some(args_write),
        script: Some(script_write),
        command: Some(command_write),
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

    /// Hands the process its options (see [`crate::args::BwrapArgs::options`]), the script
    /// and the command, and returns it as running. The pipes are written from a blocking
    /// thread, so a large script cannot stall the runtime; a failed write shows up as
    /// bubblewrap or the shim failing.
    pub(crate) fn release(
        mut self,
        options: &[String],
        script: Vec<u8>,
        command: &[String],
        stdin: Vec<u8>,
    ) -> io::Result<Running> {
        let (Some(mut child), Some(args), Some(script_pipe), Some(command_pipe), Some(status)) = (
            self.child.take(),
            self.args.take(),
            self.script.take(),
            self.command.take(),
            self.status.take(),
        ) else {
            return Err(io::Error::other("launch already used"));
        };
        let encoded = nul_separated(options);
        let command = nul_separated(command);
        let stdin_pipe = child.stdin.take();
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let running = Running::new(child, self.pid, status, stdout, stderr)?;
        tokio::task::spawn_blocking(move || {
            // Arguments first: bubblewrap reads them before anything else, the script later.
            let mut args = std::fs::File::from(args);
            if args.write_all(&encoded).is_ok() {
                drop(args);
                if std::fs::File::from(script_pipe).write_all(&script).is_ok()
                    && std::fs::File::from(command_pipe)
                        .write_all(&command)
                        .is_ok()
                {
                    // Blocks while the script does not read; ends with the run at the latest
                    // (EPIPE). Dropping the pipe gives the script end-of-file.
                    if let Some(mut input) = stdin_pipe {
                        let _ = input.write_all(&stdin);
                    }
                }
            }
        });
        Ok(running)
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            sys::kill_group(self.pid);
            reap_in_background(child);
        }
    }
}

fn nul_separated(args: &[String]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(args.iter().map(|a| a.len() + 1).sum());
    for arg in args {
        encoded.extend_from_slice(arg.as_bytes());
        encoded.push(0);
    }
    encoded
}

fn reap_in_background(mut child: Child) {
    let _ = child.kill();
    let spawned = std::thread::Builder::new()
        .name("sandbox-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a reaper thread; a zombie may remain");
    }
}

/// A released bubblewrap: its output pipes, its status pipe and an async wait.
#[derive(Debug)]
pub(crate) struct Running {
    child: Option<Child>,
    pub pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    pub status_pipe: Option<OwnedFd>,
    pub stdout: Option<tokio::net::unix::pipe::Receiver>,
    pub stderr: Option<tokio::net::unix::pipe::Receiver>,
    exit: Option<ExitStatus>,
}

impl Running {
    fn new(
        child: Child,
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
            status_pipe: Some(status),
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

    /// SIGKILLs bubblewrap and its process group, unless it was already reaped.
    pub(crate) fn kill(&mut self) {
        if self.exit.is_none() {
            sys::kill_group(self.pid);
            if let Some(child) = self.child.as_mut() {
                let _ = child.kill();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Some(child) = self.child.take() {
                sys::kill_group(self.pid);
                reap_in_background(child);
            }
        }
    }
}
