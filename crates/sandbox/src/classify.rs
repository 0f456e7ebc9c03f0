//! Turning how a run stopped into a [`RunOutcome`] (SANDBOX.md §3 precedence).

use integr8s_core::ports::executor::RunOutcome;

/// Why supervision stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The process tree ended on its own.
    Finished,
    TimedOut,
    OutputLimit,
    /// The CPU-time budget was used up.
    CpuLimit,
    Cancelled,
}

/// How bubblewrap itself ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl From<std::process::ExitStatus> for ExitKind {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitKind::Code(code),
            (None, Some(signal)) => ExitKind::Signal(signal),
            (None, None) => ExitKind::Unknown,
        }
    }
}

/// Supervisor verdicts first, then OOM, then signals, then the exit code.
///
/// `exit` should come from the init shim, which sees the real wait status; bubblewrap alone
/// reports a signalled script as exit code 128+N.
pub(crate) fn classify(stop: Stop, exit: ExitKind, oom_kills: u64) -> RunOutcome {
    match stop {
        Stop::TimedOut => return RunOutcome::TimedOut,
        Stop::OutputLimit => return RunOutcome::OutputLimit,
        Stop::CpuLimit => return RunOutcome::CpuLimit,
        Stop::Cancelled => return RunOutcome::Cancelled,
        Stop::Finished => {}
    }
    if oom_kills > 0 {
        return RunOutcome::OutOfMemory;
    }
    match exit {
        ExitKind::Signal(signal) => RunOutcome::Signaled { signal },
        ExitKind::Code(code) => RunOutcome::Exited { code },
        ExitKind::Unknown => RunOutcome::Signaled { signal: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_verdicts_win_over_everything() {
        for exit in [ExitKind::Code(0), ExitKind::Code(137), ExitKind::Signal(9)] {
            assert_eq!(classify(Stop::TimedOut, exit, 1), RunOutcome::TimedOut);
            assert_eq!(
                classify(Stop::OutputLimit, exit, 1),
                RunOutcome::OutputLimit
            );
            assert_eq!(classify(Stop::Cancelled, exit, 0), RunOutcome::Cancelled);
            assert_eq!(classify(Stop::CpuLimit, exit, 1), RunOutcome::CpuLimit);
        }
    }

    #[test]
    fn oom_beats_signal_and_exit_code() {
        assert_eq!(
            classify(Stop::Finished, ExitKind::Code(137), 1),
            RunOutcome::OutOfMemory
        );
        assert_eq!(
            classify(Stop::Finished, ExitKind::Signal(9), 2),
            RunOutcome::OutOfMemory
        );
    }

    #[test]
    fn signals_and_codes_pass_through() {
        assert_eq!(
            classify(Stop::Finished, ExitKind::Signal(11), 0),
            RunOutcome::Signaled { signal: 11 }
        );
        assert_eq!(
            classify(Stop::Finished, ExitKind::Code(139), 0),
            RunOutcome::Exited { code: 139 }
        );
        assert_eq!(
            classify(Stop::Finished, ExitKind::Code(0), 0),
            RunOutcome::Exited { code: 0 }
        );
    }
}
