//! The JSON report of a run, its file names, and the summary printed at the end.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::LoadError;
use crate::stats::StatsReport;
use crate::template::Group;

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    /// The requested duration passed.
    Duration,
    /// Interrupted (Ctrl-C, SIGTERM): the report holds what was measured so far.
    Interrupt,
    /// Every virtual user ended before the duration (none could sign in).
    NoUsersLeft,
}

#[derive(Debug, Clone, Serialize)]
pub struct Users {
    pub user: usize,
    pub monkey: usize,
    pub signed_in: usize,
    pub sign_in_failed: usize,
    /// One account shared by all users (`--username`), or a fresh account per user.
    pub shared_account: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub base_url: String,
    pub mode: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub duration_requested_s: f64,
    pub stopped_by: StoppedBy,
    pub users: Users,
    pub concurrency: usize,
    /// The runtime the user flows submit scripts to.
    pub runtime: Option<String>,
    #[serde(flatten)]
    pub stats: StatsReport,
}

impl Report {
    /// The files of this report in `dir`: `load-<mode>-<start>` plus `ext`.
    pub fn stem(&self, dir: &Path) -> PathBuf {
        let stamp = chrono::DateTime::parse_from_rfc3339(&self.started_at)
            .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
            .unwrap_or_default();
        dir.join(format!("load-{}-{stamp}", self.mode))
    }

    pub fn write(&self, path: &Path) -> Result<(), LoadError> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(|source| LoadError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let t = &s.totals;
        let mut out = format!(
            "{} mode, {:.0} s ({:?}), {} users ({} signed in)\n\
             requests {} ({:.1}/s), errors {} ({:.2} %), no answer {}, rate limited {}\n\
             latency all: p50 {:.1} ms, p99 {:.1} ms\n",
            self.mode,
            s.elapsed_s,
            self.stopped_by,
            self.users.user + self.users.monkey,
            self.users.signed_in,
            t.requests,
            t.requests_per_second,
            t.errors,
            t.error_rate * 100.0,
            t.statuses.get("599").copied().unwrap_or(0),
            t.rate_limited,
            t.latency_ms.p50,
            t.latency_ms.p99,
        );
        if let Some(api) = s.groups.get(&Group::Api) {
            out.push_str(&format!(
                "latency api (non-execution): p50 {:.1} ms, p99 {:.1} ms over {} requests\n",
                api.latency_ms.p50, api.latency_ms.p99, api.count
            ));
        }
        let e = &s.executions;
        if e.submitted > 0 {
            out.push_str(&format!(
                "executions: submitted {}, finished {} {:?}, unfinished {}, wrong results {}, \
                 {:.2} completed/s, end-to-end p50 {:.1} ms p99 {:.1} ms, queue wait p50 {:.1} ms\n",
                e.submitted,
                e.finished,
                e.finished_by_status,
                e.unfinished,
                e.wrong_results,
                e.completed_per_second,
                e.end_to_end_ms.p50,
                e.end_to_end_ms.p99,
                e.queue_wait_ms.p50,
            ));
        }
        if t.rate_limited > 0 {
            out.push_str(
                "note: 429 answers: the run measured the server's rate limits too \
                 (see \"Measuring the server, not its limits\" in the README)\n",
            );
        }
        if self.users.monkey > 0 {
            out.push_str(&format!(
                "monkey findings: {} {:?}\n",
                s.findings.total, s.findings.by_reason
            ));
        }
        out
    }
}
