//! A scripted executor: the "script" says what the run does, so pipeline logic can be tested
//! without the sandbox. It counts runs per execution and records who was running at each start.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::ports::{
    ExecError, Executor, ExecutorHealth, RunControl, RunOutcome, RunProgress, RunReport, RunSpec,
};
use tokio::sync::watch;

/// Scripts understood by [`ScriptedExecutor`]:
/// - `print:<text>` exits 0 printing `<text>`;
/// - `exit:<n>` exits with code n;
/// - `timeout` reports a wall-clock timeout;
/// - `fail` fails inside the sandbox (an executor error);
/// - `block` runs until [`ScriptedExecutor::open_gate`] (then exits 0) or until cancelled.
pub struct ScriptedExecutor {
    state: Mutex<State>,
    gate: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    runs: HashMap<String, u32>,
    live: HashSet<String>,
    /// Execution ids in the order their runs started.
    started: Vec<String>,
    /// The live set right after each start.
    snapshots: Vec<HashSet<String>>,
}

impl ScriptedExecutor {
    pub fn new() -> Self {
        Self {
            state: Mutex::default(),
            gate: watch::Sender::new(false),
        }
    }

    /// Lets every blocked run (and every later one) finish.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn runs(&self, execution_id: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .runs
            .get(execution_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn live(&self) -> HashSet<String> {
        self.state.lock().unwrap().live.clone()
    }

    pub fn started(&self) -> Vec<String> {
        self.state.lock().unwrap().started.clone()
    }

    pub fn snapshots(&self) -> Vec<HashSet<String>> {
        self.state.lock().unwrap().snapshots.clone()
    }
}

fn report(outcome: RunOutcome, stdout: &str) -> RunReport {
    RunReport {
        outcome,
        stdout: stdout.to_owned(),
        stderr: String::new(),
        output_truncated: false,
        wall_time: Duration::from_millis(10),
        cpu_user: Duration::from_millis(20),
        cpu_system: Duration::from_millis(10),
        peak_memory_bytes: 4 * 1024 * 1024,
        pids_limit_hit: false,
    }
}

#[async_trait]
impl Executor for ScriptedExecutor {
    async fn run(&self, spec: &RunSpec, control: RunControl) -> Result<RunReport, ExecError> {
        let id = spec.execution_id.clone();
        {
            let mut s = self.state.lock().unwrap();
            *s.runs.entry(id.clone()).or_default() += 1;
            s.live.insert(id.clone());
            s.started.push(id.clone());
            let snapshot = s.live.clone();
            s.snapshots.push(snapshot);
        }
        // Placed at once and started right away, like a sandbox slot would report.
        control.report(RunProgress::Placed {
            place: "scripted-slot".to_owned(),
        });
        control.report(RunProgress::Started);
        let script = spec.script.as_str();
        let result = if let Some(text) = script.strip_prefix("print:") {
            Ok(report(RunOutcome::Exited { code: 0 }, text))
        } else if let Some(code) = script.strip_prefix("exit:") {
            let code = code.trim().parse().unwrap_or(1);
            Ok(report(RunOutcome::Exited { code }, ""))
        } else if script == "timeout" {
            Ok(report(RunOutcome::TimedOut, "partial"))
        } else if script == "fail" {
            Err(ExecError::Internal("scripted failure".to_owned()))
        } else {
            let mut gate = self.gate.subscribe();
            tokio::select! {
                _ = gate.wait_for(|open| *open) => Ok(report(RunOutcome::Exited { code: 0 }, "released")),
                () = control.cancel.cancelled() => Ok(report(RunOutcome::Cancelled, "")),
            }
        };
        self.state.lock().unwrap().live.remove(&id);
        result
    }

    fn health(&self) -> ExecutorHealth {
        ExecutorHealth {
            ready: true,
            mode: "scripted".to_owned(),
            detail: None,
        }
    }
}
