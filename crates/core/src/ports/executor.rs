//! The executor port: run one script in isolation and report what happened.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ErrorCode;
use crate::execution::RunLimits;

/// What to run. `command` is the argv inside the sandbox; the script is written to
/// `/work/<file_name>` before it starts.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub execution_id: String,
    pub lang: String,
    pub lang_version: String,
    pub file_name: String,
    pub script: String,
    pub command: Vec<String>,
    /// Extra environment for the interpreter (on top of PATH, HOME, LANG).
    pub env: Vec<(String, String)>,
    pub limits: RunLimits,
    /// Written to the script's standard input, then closed; `None`: empty input.
    pub stdin: Option<String>,
    /// An equivalent of `command` that can be started before the script exists (the runtime
    /// registry's `prestart`); an executor may start it ahead of the run or ignore it.
    pub prestart: Option<Vec<String>>,
}

/// How a run ended, most specific cause first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut,
    OutputLimit,
    OutOfMemory,
    /// The run used up its CPU-time budget (all processes together) and was killed.
    CpuLimit,
    Cancelled,
}

/// The result of a finished run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub outcome: RunOutcome,
    pub stdout: String,
    pub stderr: String,
    /// Output beyond the cap was dropped and a marker appended.
    pub output_truncated: bool,
    pub wall_time: Duration,
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub peak_memory_bytes: u64,
    /// Fork attempts refused by the process limit.
    pub pids_limit_hit: bool,
}

/// A step of a run, reported by the executor while the run goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunProgress {
    /// The run has a place to run in (for the local sandbox: a slot, named by `place`) and its
    /// sandbox is being prepared.
    Placed { place: String },
    /// The script was handed to its sandbox and started. Reported once per run.
    Started,
}

/// Cancellation and progress signals for one run.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Cancelling it kills the whole process tree; the run reports `Cancelled`.
    pub cancel: CancellationToken,
    /// Receives the run's [`RunProgress`]; `None`: nobody listens.
    pub progress: Option<mpsc::UnboundedSender<RunProgress>>,
}

impl RunControl {
    /// Reports a step of the run; never blocks, and a listener that left is not an error.
    pub fn report(&self, step: RunProgress) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(step);
        }
    }
}

#[derive(Debug, Error)]
pub enum ExecError {
    /// The sandbox cannot isolate runs here; nothing was executed.
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// The run could not be started or supervised.
    #[error("sandbox failure: {0}")]
    Internal(String),
}

impl ExecError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ExecError::Unavailable(_) => ErrorCode::Unavailable,
            ExecError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The executor's self-test result, reported by health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorHealth {
    pub ready: bool,
    /// e.g. "bubblewrap+cgroup-v1", "unavailable".
    pub mode: String,
    /// Cause and fix when not ready; notes on weaker isolation otherwise.
    pub detail: Option<String>,
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs the spec to completion (or until cancelled). Never leaves a process behind.
    async fn run(&self, spec: &RunSpec, control: RunControl) -> Result<RunReport, ExecError>;
    fn health(&self) -> ExecutorHealth;
}
