//! The live progress line on a terminal: elapsed, requests per second, errors, p50/p99. Nothing
//! is drawn when standard error is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;

const REFRESH: Duration = Duration::from_millis(250);

/// Draws the line until `stop` is cancelled; `None` when not on a terminal or not wanted.
pub fn start(
    stats: Arc<Stats>,
    wanted: bool,
    duration: Duration,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(REFRESH);
    Some(tokio::spawn(async move {
        loop {
            bar.set_message(line(&stats, duration));
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
        bar.finish_and_clear();
    }))
}

fn line(stats: &Stats, duration: Duration) -> String {
    let p = stats.progress();
    let mut line = format!(
        "{:>5.0}s/{}s  {:>5} req/s  {} requests  {} errors  p50 {:.1} ms  p99 {:.1} ms",
        p.elapsed.as_secs_f64(),
        duration.as_secs(),
        p.requests_per_second,
        p.requests,
        p.errors,
        p.p50_ms,
        p.p99_ms,
    );
    if p.findings > 0 {
        line.push_str(&format!("  {} findings", p.findings));
    }
    line
}
