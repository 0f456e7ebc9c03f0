//! Watching one run of a sandbox: output with a cap, the wall deadline, the CPU budget,
//! cancellation, and killing the whole sandbox.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::capture::{Capture, Stream};
use crate::cgroup::RunCgroup;
use crate::classify::Stop;
use crate::init::{parse_status, InitStatus};
use crate::launch::Running;

/// How long to keep reading pipes after the tree was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often the cgroup's CPU counter is compared with the CPU budget.
const CPU_POLL: Duration = Duration::from_millis(50);

/// The limits supervision enforces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub wall: Duration,
    /// CPU time of the whole tree, read from the cgroup (ignored without one).
    pub cpu: Option<Duration>,
    pub output_bytes: usize,
}

/// Resolves when the cgroup's CPU usage exceeds `budget`; never without a budget.
async fn cpu_exhausted(cgroup: Option<&RunCgroup>, budget: Option<Duration>) {
    let (Some(cgroup), Some(budget)) = (cgroup, budget) else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(CPU_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if cgroup.cpu_usage() > budget {
            return;
        }
    }
}

/// The result of supervising one process tree.
#[derive(Debug)]
pub(crate) struct Supervised {
    pub stop: Stop,
    /// bubblewrap's exit status; `None` when the shim reported the end of the run first (the
    /// sandbox then waits for its next run, see [`Running::into_idle`]).
    pub status: Option<ExitStatus>,
    /// What the init shim reported.
    pub init: InitStatus,
    pub capture: Capture,
}

type Pipe = tokio::net::unix::pipe::Receiver;

async fn read_some(pipe: &mut Option<Pipe>, buf: &mut [u8]) -> io::Result<usize> {
    match pipe {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Reads what a pipe holds right now, without waiting; clears `pipe` at end-of-file.
/// Returns `true` when `sink` refused more (the output cap).
fn read_ready(
    pipe: &mut Option<Pipe>,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> bool,
) -> bool {
    while let Some(r) = pipe {
        // The system call itself, not the runtime's `try_read`: that one answers WouldBlock
        // without reading while the reactor has not yet seen the pipe become readable, and
        // data written just before the shim's report would be lost.
        match crate::sys::read_now(r, buf) {
            Ok(0) => *pipe = None,
            Ok(n) => {
                if sink(&buf[..n]) {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => *pipe = None,
        }
    }
    false
}

/// Kills the sandbox (see [`Running::kill`]), reaps bubblewrap, and sweeps the run cgroup.
pub(crate) async fn kill_tree(
    child: &mut Running,
    cgroup: Option<&RunCgroup>,
) -> io::Result<ExitStatus> {
    let status = child.kill().await;
    if let Some(cgroup) = cgroup {
        cgroup.kill_all().await;
    }
    status
}

/// Supervises `child` until the shim reports the end of the run (every process of the
/// sandbox gone, the output complete in the pipes) or, failing that, until its tree is gone.
/// Only returns early on I/O errors of `wait`.
pub(crate) async fn supervise(
    child: &mut Running,
    cgroup: Option<&RunCgroup>,
    budget: Budget,
    cancel: &CancellationToken,
) -> io::Result<Supervised> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut status_pipe = child.status_pipe.take();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut status_buf = [0u8; 256];
    let mut status_text = Vec::new();
    let mut capture = Capture::new(budget.output_bytes);
    let mut status: Option<ExitStatus> = None;
    let deadline = tokio::time::sleep(budget.wall);
    tokio::pin!(deadline);
    let cpu = cpu_exhausted(cgroup, budget.cpu);
    tokio::pin!(cpu);

    let stop = loop {
        if stdout.is_none() && stderr.is_none() && status.is_some() {
            break Stop::Finished;
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Stop::Cancelled,
            () = &mut deadline => break Stop::TimedOut,
            () = &mut cpu, if status.is_none() => break Stop::CpuLimit,
            result = child.wait(), if status.is_none() => {
                status = Some(result?);
                // The sandbox's pid namespace is gone with bubblewrap; sweep stragglers so
                // nothing keeps the pipes open.
                if let Some(cgroup) = cgroup {
                    cgroup.kill_all_once();
                }
            }
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Ok(0) | Err(_) => stdout = None,
                Ok(n) => if capture.push(Stream::Stdout, &out_buf[..n]) { break Stop::OutputLimit },
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => if capture.push(Stream::Stderr, &err_buf[..n]) { break Stop::OutputLimit },
            },
            read = read_some(&mut status_pipe, &mut status_buf) => match read {
                Ok(0) | Err(_) => status_pipe = None,
                Ok(n) => {
                    status_text.extend_from_slice(&status_buf[..n]);
                    if parse_status(&String::from_utf8_lossy(&status_text)).finished() {
                        // Nothing of the run is alive: what the pipes hold is all it wrote.
                        let over = read_ready(&mut stdout, &mut out_buf, |d| capture.push(Stream::Stdout, d))
                            || read_ready(&mut stderr, &mut err_buf, |d| capture.push(Stream::Stderr, d));
                        break if over { Stop::OutputLimit } else { Stop::Finished };
                    }
                }
            },
        }
    };
    read_ready(&mut status_pipe, &mut status_buf, |d| {
        status_text.extend_from_slice(d);
        false
    });
    let init = parse_status(&String::from_utf8_lossy(&status_text));
    if stop == Stop::Finished {
        // Either the shim reported (the sandbox waits for its next run and keeps its status
        // pipe), or bubblewrap is gone and both pipes are closed.
        if status.is_none() {
            child.status_pipe = status_pipe;
        }
        return Ok(Supervised {
            stop,
            status,
            init,
            capture,
        });
    }

    let killed = kill_tree(child, cgroup).await;
    let status = match status {
        Some(status) => status,
        None => killed?,
    };
    // Keep what was already written to the pipes before the kill (within the cap).
    if stop != Stop::OutputLimit {
        let drain = async {
            loop {
                if stdout.is_none() && stderr.is_none() {
                    break;
                }
                tokio::select! {
                    read = read_some(&mut stdout, &mut out_buf) => match read {
                        Ok(0) | Err(_) => stdout = None,
                        Ok(n) => if capture.push(Stream::Stdout, &out_buf[..n]) { break },
                    },
                    read = read_some(&mut stderr, &mut err_buf) => match read {
                        Ok(0) | Err(_) => stderr = None,
                        Ok(n) => if capture.push(Stream::Stderr, &err_buf[..n]) { break },
                    },
                }
            }
        };
        // A timeout here only means a pipe stayed open; what was read is kept.
        let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;
    }
    read_ready(&mut status_pipe, &mut status_buf, |d| {
        status_text.extend_from_slice(d);
        false
    });
    Ok(Supervised {
        stop,
        status: Some(status),
        init: parse_status(&String::from_utf8_lossy(&status_text)),
        capture,
    })
}
