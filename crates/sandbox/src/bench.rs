//! A one-shot benchmark of the sandbox against bare process spawns: per-run latency medians
//! (and their ratio) for `/bin/true` and a Python hello world, throughput at 2 concurrent, and
//! verdicts against the performance targets of the local executor.

use std::fmt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use integr8s_core::execution::RunLimits;
use integr8s_core::ports::executor::{ExecError, Executor, RunControl, RunOutcome, RunSpec};

use crate::LocalExecutor;

/// Sandboxed versus bare latency of one command.
#[derive(Debug, Clone, Copy)]
pub struct LatencyPair {
    pub bare_median: Duration,
    pub sandboxed_median: Duration,
    /// Median of the per-pair ratios (sandboxed / bare), runs taken alternately.
    pub ratio: f64,
}

/// Added latency per run allowed by the target (sandboxed minus bare `/bin/true`).
pub const TARGET_ADDED_OVERHEAD: Duration = Duration::from_millis(10);
/// Highest sandboxed/bare ratio allowed for a Python hello world.
pub const TARGET_PYTHON_RATIO: f64 = 1.3;
/// Rounds of throughput runs (each side, `runs` per round) of [`bench_report`].
const THROUGHPUT_RUNS_PER_RUN: usize = 4;

/// Lowest share of bare throughput (2 concurrent) the sandbox must reach.
pub const TARGET_THROUGHPUT_SHARE: f64 = 0.75;

/// One performance target and whether a measurement met it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetVerdict {
    pub name: &'static str,
    pub measured: f64,
    pub limit: f64,
    /// `true` when `measured` is on the right side of `limit`.
    pub met: bool,
    /// How the figures read, e.g. "ms (at most)".
    pub unit: &'static str,
}

/// Figures of one [`bench_report`] run.
#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    pub runs: usize,
    pub bin_true: LatencyPair,
    pub python_hello: LatencyPair,
    /// Python hello-world runs per second with 2 at a time.
    pub bare_throughput: f64,
    pub sandboxed_throughput: f64,
}

impl BenchReport {
    /// Sandboxed minus bare median of `/bin/true`: what the sandbox adds to every run.
    pub fn added_overhead(&self) -> Duration {
        self.bin_true
            .sandboxed_median
            .saturating_sub(self.bin_true.bare_median)
    }

    /// Sandboxed throughput as a share of bare throughput (0..).
    pub fn throughput_share(&self) -> f64 {
        self.sandboxed_throughput / self.bare_throughput.max(f64::EPSILON)
    }

    /// The three targets: added overhead, Python ratio, throughput share.
    pub fn verdicts(&self) -> Vec<TargetVerdict> {
        let added_ms = self.added_overhead().as_secs_f64() * 1000.0;
        let limit_ms = TARGET_ADDED_OVERHEAD.as_secs_f64() * 1000.0;
        vec![
            TargetVerdict {
                name: "added overhead per run (/bin/true)",
                measured: added_ms,
                limit: limit_ms,
                met: added_ms <= limit_ms,
                unit: "ms (at most)",
            },
            TargetVerdict {
                name: "python hello, sandboxed/bare",
                measured: self.python_hello.ratio,
                limit: TARGET_PYTHON_RATIO,
                met: self.python_hello.ratio <= TARGET_PYTHON_RATIO,
                unit: "x (at most)",
            },
            TargetVerdict {
                name: "throughput at 2 concurrent, share of bare",
                measured: 100.0 * self.throughput_share(),
                limit: 100.0 * TARGET_THROUGHPUT_SHARE,
                met: self.throughput_share() >= TARGET_THROUGHPUT_SHARE,
                unit: "% (at least)",
            },
        ]
    }

    /// Whether every target was met.
    pub fn all_targets_met(&self) -> bool {
        self.verdicts().iter().all(|v| v.met)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for (name, p) in [
            ("/bin/true", self.bin_true),
            ("python hello", self.python_hello),
        ] {
            writeln!(
                f,
                "{name:<13} bare {:7.2} ms  sandboxed {:7.2} ms  added {:6.2} ms  ratio {:5.2}x",
                ms(p.bare_median),
                ms(p.sandboxed_median),
                ms(p.sandboxed_median.saturating_sub(p.bare_median)),
                p.ratio
            )?;
        }
        write!(
            f,
            "throughput (python hello, 2 concurrent): bare {:.1}/s  sandboxed {:.1}/s  ({:.0}% of bare); {} runs each",
            self.bare_throughput,
            self.sandboxed_throughput,
            100.0 * self.throughput_share(),
            self.runs * THROUGHPUT_RUNS_PER_RUN
        )?;
        for v in self.verdicts() {
            write!(
                f,
                "\ntarget {:<42} {:>7.2} {} {:.2}: {}",
                v.name,
                v.measured,
                v.unit,
                v.limit,
                if v.met { "met" } else { "NOT met" }
            )?;
        }
        Ok(())
    }
}

fn spec(command: &[&str]) -> RunSpec {
    RunSpec {
        execution_id: "bench".into(),
        lang: "bench".into(),
        lang_version: String::new(),
        file_name: "bench".into(),
        script: String::new(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        limits: RunLimits::default(),
        stdin: None,
        prestart: None,
    }
}

async fn bare(command: &[&str]) -> Result<Duration, ExecError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| ExecError::Internal("empty bench command".into()))?;
    let started = Instant::now();
    let status = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| ExecError::Internal(format!("bare {program}: {e}")))?;
    if !status.status.success() {
        return Err(ExecError::Internal(format!("bare {program} failed")));
    }
    Ok(started.elapsed())
}

async fn sandboxed(executor: &LocalExecutor, spec: &RunSpec) -> Result<Duration, ExecError> {
    let started = Instant::now();
    let report = executor.run(spec, RunControl::default()).await?;
    if report.outcome != (RunOutcome::Exited { code: 0 }) {
        return Err(ExecError::Internal(format!(
            "sandboxed {:?} ended {:?}: {}",
            spec.command, report.outcome, report.stderr
        )));
    }
    Ok(started.elapsed())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn pair(
    executor: &LocalExecutor,
    command: &[&str],
    runs: usize,
) -> Result<LatencyPair, ExecError> {
    let spec = spec(command);
    // Warm caches on both sides first.
    bare(command).await?;
    sandboxed(executor, &spec).await?;
    let (mut b, mut s, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let bare_time = bare(command).await?.as_secs_f64();
        let sandboxed_time = sandboxed(executor, &spec).await?.as_secs_f64();
        b.push(bare_time);
        s.push(sandboxed_time);
        r.push(sandboxed_time / bare_time.max(1e-9));
    }
    Ok(LatencyPair {
        bare_median: Duration::from_secs_f64(median(&mut b)),
        sandboxed_median: Duration::from_secs_f64(median(&mut s)),
        ratio: median(&mut r),
    })
}

/// Runs `runs` (rounded up to even) calls of `one`, two at a time; returns the time taken.
async fn throughput<F, Fut>(runs: usize, one: F) -> Result<Duration, ExecError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Duration, ExecError>>,
{
    let started = Instant::now();
    let half = runs.div_ceil(2);
    let worker = || async {
        for _ in 0..half {
            one().await?;
        }
        Ok::<(), ExecError>(())
    };
    let (a, b) = tokio::join!(worker(), worker());
    a?;
    b?;
    Ok(started.elapsed())
}

/// Measures the executor against bare spawns, `runs` pairs per figure (at least 3), in one
/// call; see [`BenchReport::verdicts`] for the targets. `python` is the interpreter to use (it
/// must be visible inside the sandbox). The executor needs at least two concurrent slots for
/// the throughput figure to mean anything. Fails with [`ExecError::Unavailable`] when the
/// executor is not ready, and with [`ExecError::Internal`] when a command fails bare or in
/// the sandbox (the message names it). Figures from a busy machine are noisy: compare runs
/// taken under the same load.
pub async fn bench_report(
    executor: &LocalExecutor,
    python: &str,
    runs: usize,
) -> Result<BenchReport, ExecError> {
    let health = executor.health();
    if !health.ready {
        return Err(ExecError::Unavailable(
            health
                .detail
                .unwrap_or_else(|| "the sandbox is not ready".into()),
        ));
    }
    let runs = runs.max(3);
    let hello = [python, "-c", "print(1)"];
    let bin_true = pair(executor, &["/bin/true"], runs).await?;
    let python_hello = pair(executor, &hello, runs).await?;
    let hello_spec = spec(&hello);
    // A throughput figure from a fraction of a second is mostly noise, and the machine drifts:
    // measure longer, in alternating rounds of bare and sandboxed runs.
    let (mut bare_time, mut sandboxed_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..THROUGHPUT_RUNS_PER_RUN {
        bare_time += throughput(runs, || bare(&hello)).await?;
        sandboxed_time += throughput(runs, || sandboxed(executor, &hello_spec)).await?;
    }
    let total = (runs.div_ceil(2) * 2 * THROUGHPUT_RUNS_PER_RUN) as f64;
    let bare_throughput = total / bare_time.as_secs_f64().max(f64::EPSILON);
    let sandboxed_throughput = total / sandboxed_time.as_secs_f64().max(f64::EPSILON);
    Ok(BenchReport {
        runs,
        bin_true,
        python_hello,
        bare_throughput,
        sandboxed_throughput,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(added_ms: u64, ratio: f64, share: f64) -> BenchReport {
        let pair = |bare: u64, sandboxed: u64, ratio: f64| LatencyPair {
            bare_median: Duration::from_millis(bare),
            sandboxed_median: Duration::from_millis(sandboxed),
            ratio,
        };
        BenchReport {
            runs: 3,
            bin_true: pair(2, 2 + added_ms, 1.0),
            python_hello: pair(20, 26, ratio),
            bare_throughput: 100.0,
            sandboxed_throughput: 100.0 * share,
        }
    }

    #[test]
    fn verdicts_follow_the_targets() {
        let good = report(8, 1.2, 0.8);
        assert!(good.all_targets_met(), "{:?}", good.verdicts());
        let bad = report(12, 1.4, 0.5);
        let verdicts = bad.verdicts();
        assert_eq!(verdicts.len(), 3);
        assert!(verdicts.iter().all(|v| !v.met), "{verdicts:?}");
        let text = bad.to_string();
        assert_eq!(text.matches("NOT met").count(), 3, "{text}");
    }
}
