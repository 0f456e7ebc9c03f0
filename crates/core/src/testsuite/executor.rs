//! Executor conformance suite: what every adapter of the [`Executor`] port must do with a run,
//! whatever isolates it (the local sandbox today). Run with
//! [`executor_test_suite!`](crate::executor_test_suite).
//!
//! The cases run POSIX shell scripts (`/bin/sh main.sh`, the script written to
//! `/work/main.sh`), which every Linux environment an adapter runs scripts in has. Waits have
//! a generous deadline that only turns a hang into a failure, never a time limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::execution::RunLimits;
use crate::ports::executor::{Executor, RunControl, RunOutcome, RunProgress, RunReport, RunSpec};

/// Generates one `#[tokio::test]` per executor case. `$make` is an expression (re-evaluated
/// per test) giving a future of `Arc<dyn Executor>`, ready to run.
#[macro_export]
macro_rules! executor_test_suite {
    ($make:expr) => {
        $crate::executor_test_suite!(@cases $make;
            health_is_ready,
            exit_code_stdout_and_stderr_are_reported,
            a_nonzero_exit_is_an_exit_not_an_error,
            the_script_is_in_the_work_dir_and_runs_there,
            stdin_is_delivered_and_closed,
            no_stdin_reads_as_empty,
            extra_environment_reaches_the_script,
            a_signal_is_reported_as_such,
            the_wall_clock_limit_ends_the_run,
            output_beyond_the_cap_is_cut_and_marked,
            a_cancel_ends_the_run,
            progress_is_placed_then_started_once,
            concurrent_runs_see_only_their_own_files,
            a_run_leaves_nothing_for_the_next,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let executor: std::sync::Arc<dyn $crate::ports::Executor> = $make.await;
                $crate::testsuite::executor::$case(executor).await;
            }
        )+
    };
}

type Exec = Arc<dyn Executor>;

/// Turns a hang into a failure; never a performance bound.
const DEADLINE: Duration = Duration::from_secs(120);

/// A shell script run as `/bin/sh main.sh`, with a 30 s limit unless the case sets another.
pub fn shell(script: &str) -> RunSpec {
    RunSpec {
        execution_id: format!("conformance-{}", crate::new_id()),
        lang: "sh".into(),
        lang_version: String::new(),
        file_name: "main.sh".into(),
        script: script.into(),
        command: vec!["/bin/sh".into(), "main.sh".into()],
        env: Vec::new(),
        limits: RunLimits {
            timeout_seconds: 30,
            ..RunLimits::default()
        },
        stdin: None,
        prestart: None,
    }
}

async fn run_with(executor: &Exec, spec: &RunSpec, control: RunControl) -> RunReport {
    match tokio::time::timeout(DEADLINE, executor.run(spec, control)).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("the run failed: {e}"),
        Err(_) => panic!("the run did not end within {DEADLINE:?}"),
    }
}

async fn run(executor: &Exec, spec: &RunSpec) -> RunReport {
    run_with(executor, spec, RunControl::default()).await
}

fn exited(report: &RunReport, code: i32) {
    assert_eq!(report.outcome, RunOutcome::Exited { code }, "{report:?}");
}

pub async fn health_is_ready(executor: Exec) {
    let health = executor.health();
    assert!(health.ready, "{health:?}");
    assert!(!health.mode.is_empty());
}

pub async fn exit_code_stdout_and_stderr_are_reported(executor: Exec) {
    let report = run(
        &executor,
        &shell("echo out; echo err >&2; printf 'no newline'"),
    )
    .await;
    exited(&report, 0);
    assert_eq!(report.stdout, "out\nno newline");
    assert_eq!(report.stderr, "err\n");
    assert!(!report.output_truncated);
    assert!(report.wall_time > Duration::ZERO);
}

pub async fn a_nonzero_exit_is_an_exit_not_an_error(executor: Exec) {
    let report = run(&executor, &shell("echo before; exit 3")).await;
    exited(&report, 3);
    assert_eq!(report.stdout, "before\n");
    let report = run(&executor, &shell("this-command-does-not-exist")).await;
    exited(&report, 127);
    assert!(report.stderr.contains("not found"), "{report:?}");
}

pub async fn the_script_is_in_the_work_dir_and_runs_there(executor: Exec) {
    let report = run(&executor, &shell("pwd; cat /work/main.sh | head -c 4")).await;
    exited(&report, 0);
    assert_eq!(report.stdout, "/work\npwd;");
}

pub async fn stdin_is_delivered_and_closed(executor: Exec) {
    let mut spec = shell("cat; echo; echo done");
    spec.stdin = Some("line one\nline two".into());
    let report = run(&executor, &spec).await;
    exited(&report, 0);
    assert_eq!(report.stdout, "line one\nline two\ndone\n");
}

pub async fn no_stdin_reads_as_empty(executor: Exec) {
    let report = run(&executor, &shell("wc -c; echo done")).await;
    exited(&report, 0);
    assert_eq!(
        report.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "done"]
    );
}

pub async fn extra_environment_reaches_the_script(executor: Exec) {
    let mut spec = shell("echo \"$GREETING\"");
    spec.env = vec![("GREETING".into(), "hello from the spec".into())];
    let report = run(&executor, &spec).await;
    exited(&report, 0);
    assert_eq!(report.stdout, "hello from the spec\n");
}

pub async fn a_signal_is_reported_as_such(executor: Exec) {
    let report = run(&executor, &shell("echo before; kill -KILL $$; echo after")).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Signaled { signal: 9 },
        "{report:?}"
    );
    assert_eq!(report.stdout, "before\n");
}

pub async fn the_wall_clock_limit_ends_the_run(executor: Exec) {
    let mut spec = shell("echo started; sleep 60; echo never");
    spec.limits.timeout_seconds = 1;
    let report = run(&executor, &spec).await;
    assert_eq!(report.outcome, RunOutcome::TimedOut, "{report:?}");
    assert_eq!(report.stdout, "started\n");
    assert!(report.wall_time >= Duration::from_secs(1), "{report:?}");
}

pub async fn output_beyond_the_cap_is_cut_and_marked(executor: Exec) {
    let mut spec =
        shell("i=0; while [ $i -lt 100000 ]; do echo 0123456789abcdef; i=$((i+1)); done");
    spec.limits.max_output_bytes = 64 * 1024;
    let report = run(&executor, &spec).await;
    assert_eq!(
        report.outcome,
        RunOutcome::OutputLimit,
        "{:?}",
        report.outcome
    );
    assert!(report.output_truncated);
    let kept = report.stdout.len() + report.stderr.len();
    assert!(
        kept <= 64 * 1024 + 1024,
        "{kept} bytes kept for a 64 KiB cap (a short marker allowed)"
    );
    assert!(report.stdout.starts_with("0123456789abcdef\n"));
}

pub async fn a_cancel_ends_the_run(executor: Exec) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let control = RunControl {
        progress: Some(tx),
        ..RunControl::default()
    };
    let cancel = control.cancel.clone();
    let spec = shell("echo started; sleep 60; echo never");
    let run = {
        let executor = executor.clone();
        tokio::spawn(async move { run_with(&executor, &spec, control).await })
    };
    // Cancel once the script runs, so the kill has something to end.
    let started = tokio::time::timeout(DEADLINE, async {
        while let Some(step) = rx.recv().await {
            if step == RunProgress::Started {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "the run never reported Started");
    cancel.cancel();
    let report = run.await.expect("the run's task");
    assert_eq!(report.outcome, RunOutcome::Cancelled, "{report:?}");
    assert!(!report.stdout.contains("never"));
}

pub async fn progress_is_placed_then_started_once(executor: Exec) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let control = RunControl {
        progress: Some(tx),
        ..RunControl::default()
    };
    let report = run_with(&executor, &shell("echo hi"), control).await;
    exited(&report, 0);
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    let started = steps.iter().filter(|s| **s == RunProgress::Started).count();
    assert_eq!(started, 1, "{steps:?}");
    let placed = steps
        .iter()
        .position(|s| matches!(s, RunProgress::Placed { .. }));
    let first_start = steps.iter().position(|s| *s == RunProgress::Started);
    assert!(placed < first_start, "placed before started: {steps:?}");
    assert!(placed.is_some(), "{steps:?}");
}

pub async fn concurrent_runs_see_only_their_own_files(executor: Exec) {
    let script = |name: &str| {
        shell(&format!(
            "echo {name} > mine; sleep 1; ls; cat mine; ls /tmp | grep -c theirs || true; \
             touch /tmp/theirs-{name}"
        ))
    };
    let (spec_a, spec_b) = (script("a"), script("b"));
    let (a, b) = tokio::join!(run(&executor, &spec_a), run(&executor, &spec_b));
    for (report, name) in [(a, "a"), (b, "b")] {
        exited(&report, 0);
        assert_eq!(
            report.stdout,
            format!("main.sh\nmine\n{name}\n0\n"),
            "{report:?}"
        );
    }
}

pub async fn a_run_leaves_nothing_for_the_next(executor: Exec) {
    let planted = shell(
        "echo left > /work/left; echo left > /tmp/left; \
         (sleep 300 &) ; echo planted",
    );
    exited(&run(&executor, &planted).await, 0);
    for _ in 0..3 {
        let report = run(
            &executor,
            &shell(
                "ls -A /work /tmp; \
                 for p in /proc/[0-9]*; do cat \"$p/comm\"; done 2>/dev/null | grep -c '^sleep' || true",
            ),
        )
        .await;
        exited(&report, 0);
        assert!(!report.stdout.contains("left"), "{report:?}");
        assert!(
            report.stdout.ends_with("0\n"),
            "a process outlived its run: {report:?}"
        );
    }
}
