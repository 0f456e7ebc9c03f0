//! Maps a sandbox run report to the outcome event (see docs/pipeline.md, "Outcome mapping").

use integr8s_core::event::{Envelope, EventPayload, RunOutput};
use integr8s_core::execution::{ErrorType, ResourceUsage, RunLimits, NO_EXIT_CODE};
use integr8s_core::ports::{RunOutcome, RunReport};

/// Clock ticks per second used to express CPU time, as the contract's `clk_tck_hertz`.
const CLK_TCK_HERTZ: i64 = 100;

/// Exit code reported for runs the sandbox killed with SIGKILL (memory or output limit).
const KILLED_EXIT_CODE: i64 = 128 + 9;

const MIB: u64 = 1024 * 1024;

/// Who asked for a run to be stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub by: String,
    pub reason: Option<String>,
}

impl CancelRequest {
    /// The request a `delete_pod_command` carries: its user (or `system`) and its reason.
    pub fn from_command(env: &Envelope) -> Option<Self> {
        match &env.payload {
            EventPayload::DeletePodCommand { reason, .. } => Some(Self {
                by: env
                    .metadata
                    .user_id
                    .clone()
                    .unwrap_or_else(|| "system".to_owned()),
                reason: Some(reason.clone()),
            }),
            _ => None,
        }
    }
}

/// The exit code a run's outcome reports: the script's own, `128 + signal` when killed by a
/// signal or a limit, [`NO_EXIT_CODE`] when it was stopped by a timeout or a cancel.
pub fn exit_code_of(outcome: RunOutcome) -> i64 {
    match outcome {
        RunOutcome::Exited { code } => i64::from(code),
        RunOutcome::Signaled { signal } => 128 + i64::from(signal),
        RunOutcome::OutputLimit | RunOutcome::OutOfMemory | RunOutcome::CpuLimit => {
            KILLED_EXIT_CODE
        }
        RunOutcome::TimedOut | RunOutcome::Cancelled => NO_EXIT_CODE,
    }
}

/// The outcome event of a finished run. `cancel` says who asked for a cancel; `started` whether
/// the script had started (a cancelled run then was force-terminated).
pub fn map_report(
    execution_id: &str,
    report: &RunReport,
    limits: &RunLimits,
    cancel: Option<&CancelRequest>,
    started: bool,
) -> EventPayload {
    let execution_id = execution_id.to_owned();
    let output = RunOutput {
        stdout: report.stdout.clone(),
        stderr: report.stderr.clone(),
        resource_usage: Some(usage(report)),
    };
    // The output (up to the output cap) is copied once, into the one event built.
    let failed = |output: RunOutput, exit_code: i64, error_type: ErrorType, message: String| {
        EventPayload::ExecutionFailed {
            execution_id: execution_id.clone(),
            exit_code,
            error_type,
            error_message: Some(message),
            output,
        }
    };
    match report.outcome {
        RunOutcome::Exited { code } => EventPayload::ExecutionCompleted {
            execution_id: execution_id.clone(),
            exit_code: i64::from(code),
            output,
        },
        RunOutcome::Signaled { signal } => failed(
            output,
            exit_code_of(report.outcome),
            ErrorType::ScriptError,
            format!("killed by signal {signal}"),
        ),
        RunOutcome::OutputLimit => failed(
            output,
            KILLED_EXIT_CODE,
            ErrorType::ResourceLimit,
            format!("output limit of {} bytes reached", limits.max_output_bytes),
        ),
        RunOutcome::OutOfMemory => {
            let message = if report.peak_memory_bytes > 0 {
                format!(
                    "out of memory (peak {} MiB)",
                    report.peak_memory_bytes / MIB
                )
            } else {
                format!("out of memory (limit {} MiB)", limits.memory_bytes / MIB)
            };
            failed(output, KILLED_EXIT_CODE, ErrorType::ResourceLimit, message)
        }
        RunOutcome::CpuLimit => failed(
            output,
            KILLED_EXIT_CODE,
            ErrorType::ResourceLimit,
            format!(
                "CPU time limit reached ({} ms used)",
                (report.cpu_user + report.cpu_system).as_millis()
            ),
        ),
        RunOutcome::TimedOut => EventPayload::ExecutionTimeout {
            execution_id: execution_id.clone(),
            timeout_seconds: limits.timeout_seconds,
            output,
        },
        RunOutcome::Cancelled => EventPayload::ExecutionCancelled {
            execution_id: execution_id.clone(),
            cancelled_by: cancel.map_or_else(|| "system".to_owned(), |c| c.by.clone()),
            force_terminated: started,
            reason: cancel.and_then(|c| c.reason.clone()),
        },
    }
}

/// The `execution_cancelled` of a run cancelled before it was handed to the executor.
pub(crate) fn cancelled_before_start(execution_id: &str, cancel: &CancelRequest) -> EventPayload {
    EventPayload::ExecutionCancelled {
        execution_id: execution_id.to_owned(),
        cancelled_by: cancel.by.clone(),
        force_terminated: false,
        reason: cancel.reason.clone(),
    }
}

/// An `execution_failed` for an infrastructure failure: nothing of the script is to blame.
pub fn system_failure(execution_id: &str, message: String) -> EventPayload {
    EventPayload::ExecutionFailed {
        execution_id: execution_id.to_owned(),
        exit_code: NO_EXIT_CODE,
        error_type: ErrorType::SystemError,
        error_message: Some(message),
        output: RunOutput::default(),
    }
}

fn usage(report: &RunReport) -> ResourceUsage {
    let cpu = report.cpu_user + report.cpu_system;
    let cpu_ms = i64::try_from(cpu.as_millis()).unwrap_or(i64::MAX);
    ResourceUsage {
        execution_time_wall_seconds: report.wall_time.as_secs_f64(),
        cpu_time_jiffies: cpu_ms.saturating_mul(CLK_TCK_HERTZ) / 1000,
        clk_tck_hertz: CLK_TCK_HERTZ,
        peak_memory_kb: i64::try_from(report.peak_memory_bytes / 1024).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report(outcome: RunOutcome) -> RunReport {
        RunReport {
            outcome,
            stdout: "out".into(),
            stderr: "err".into(),
            output_truncated: false,
            wall_time: Duration::from_millis(1500),
            cpu_user: Duration::from_millis(230),
            cpu_system: Duration::from_millis(20),
            peak_memory_bytes: 300 * MIB,
            pids_limit_hit: false,
        }
    }

    #[test]
    fn a_clean_exit_completes_with_usage_in_ticks() {
        let p = map_report(
            "e",
            &report(RunOutcome::Exited { code: 0 }),
            &RunLimits::default(),
            None,
            true,
        );
        let EventPayload::ExecutionCompleted {
            exit_code, output, ..
        } = p
        else {
            panic!("{p:?}");
        };
        assert_eq!(exit_code, 0);
        assert_eq!(output.stdout, "out");
        let u = output.resource_usage.unwrap();
        assert_eq!(u.cpu_time_jiffies, 25);
        assert_eq!(u.clk_tck_hertz, 100);
        assert_eq!(u.peak_memory_kb, 300 * 1024);
        assert!((u.execution_time_wall_seconds - 1.5).abs() < 1e-9);
    }

    #[test]
    fn signals_and_limits_fail_with_a_reason() {
        let limits = RunLimits::default();
        let p = map_report(
            "e",
            &report(RunOutcome::Signaled { signal: 9 }),
            &limits,
            None,
            true,
        );
        assert!(
            matches!(p, EventPayload::ExecutionFailed { exit_code: 137, error_type: ErrorType::ScriptError, ref error_message, .. } if error_message.as_deref() == Some("killed by signal 9"))
        );
        let p = map_report("e", &report(RunOutcome::OutputLimit), &limits, None, true);
        assert!(
            matches!(p, EventPayload::ExecutionFailed { error_type: ErrorType::ResourceLimit, ref error_message, .. } if error_message.as_deref() == Some("output limit of 1048576 bytes reached"))
        );
        let p = map_report("e", &report(RunOutcome::OutOfMemory), &limits, None, true);
        assert!(
            matches!(p, EventPayload::ExecutionFailed { error_type: ErrorType::ResourceLimit, ref error_message, .. } if error_message.as_deref() == Some("out of memory (peak 300 MiB)"))
        );
    }

    #[test]
    fn timeouts_and_cancels_have_their_own_events() {
        let limits = RunLimits::default();
        let p = map_report("e", &report(RunOutcome::TimedOut), &limits, None, true);
        assert!(matches!(
            p,
            EventPayload::ExecutionTimeout {
                timeout_seconds: 10,
                ..
            }
        ));
        let cancel = CancelRequest {
            by: "user".to_owned(),
            reason: Some("changed my mind".to_owned()),
        };
        let p = map_report(
            "e",
            &report(RunOutcome::Cancelled),
            &limits,
            Some(&cancel),
            true,
        );
        assert!(
            matches!(p, EventPayload::ExecutionCancelled { force_terminated: true, ref cancelled_by, ref reason, .. } if cancelled_by == "user" && reason.as_deref() == Some("changed my mind"))
        );
        let p = map_report(
            "e",
            &report(RunOutcome::Cancelled),
            &limits,
            Some(&cancel),
            false,
        );
        assert!(
            matches!(
                p,
                EventPayload::ExecutionCancelled {
                    force_terminated: false,
                    ..
                }
            ),
            "a run cancelled before its script started was not force-terminated"
        );
    }

    #[test]
    fn every_non_exit_outcome_has_a_number() {
        assert_eq!(exit_code_of(RunOutcome::TimedOut), -1);
        assert_eq!(exit_code_of(RunOutcome::Cancelled), -1);
        assert_eq!(exit_code_of(RunOutcome::OutOfMemory), 137);
        assert_eq!(exit_code_of(RunOutcome::OutputLimit), 137);
        assert_eq!(exit_code_of(RunOutcome::CpuLimit), 137);
        assert_eq!(exit_code_of(RunOutcome::Signaled { signal: 15 }), 143);
        assert_eq!(exit_code_of(RunOutcome::Exited { code: 4 }), 4);
    }
}
