//! A one-shot benchmark of the sandbox against bare process spawns: per-run latency medians
//! (and their ratio) for `/bin/true` and a Python hello world, and throughput at 2 concurrent.

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
            100.0 * self.sandboxed_throughput / self.bare_throughput.max(f64::EPSILON),
            self.runs
        )
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
    }
}

async fn bare(command: &[&str]) -> Result<Duration, ExecError> {
    let started = Instant::now();
    let status = tokio::process::Command::new(command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| ExecError::Internal(format!("bare {}: {e}", command[0])))?;
    if !status.status.success() {
        return Err(ExecError::Internal(format!("bare {} failed", command[0])));
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

async fn throughput<F, Fut>(runs: usize, one: F) -> Result<f64, ExecError>
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
    Ok((2 * half) as f64 / started.elapsed().as_secs_f64())
}

/// Measures the executor against bare spawns, `runs` pairs per figure, in one call.
/// `python` is the interpreter to use (it must be visible inside the sandbox). The executor
/// needs at least two concurrent slots for the throughput figure to mean anything.
pub async fn bench_report(
    executor: &LocalExecutor,
    python: &str,
    runs: usize,
) -> Result<BenchReport, ExecError> {
    let runs = runs.max(3);
    let hello = [python, "-c", "print(1)"];
    let bin_true = pair(executor, &["/bin/true"], runs).await?;
    let python_hello = pair(executor, &hello, runs).await?;
    let hello_spec = spec(&hello);
    let bare_throughput = throughput(runs, || bare(&hello)).await?;
    let sandboxed_throughput = throughput(runs, || sandboxed(executor, &hello_spec)).await?;
    Ok(BenchReport {
        runs,
        bin_true,
        python_hello,
        bare_throughput,
        sandboxed_throughput,
    })
}
