//! Everything measured during a run, shared by all virtual users: per-endpoint counts, statuses
//! and latencies, totals, the per-second timeline, execution figures and the monkey's findings.

mod executions;
mod findings;
mod latency;
mod timeline;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use executions::{ExecutionReport, Executions};
pub use findings::{Finding, FindingsReport};
pub use latency::{Bucket, Latencies, LatencySummary};
pub use timeline::Second;

use crate::template::{group_of, Group};
use findings::Findings;
use timeline::Timeline;

/// The status recorded for an exception or a client timeout (no answer), as the original does.
pub const NO_ANSWER: u16 = 599;
/// Invalid-body examples kept per endpoint.
const EXAMPLES: usize = 3;

/// One answered (or failed) request.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub method: &'a str,
    pub endpoint: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub bytes: u64,
    /// Whether the answer is an error for the one who asked (its status was not expected).
    pub error: bool,
}

#[derive(Debug)]
struct Endpoint {
    count: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    errors_by_status: BTreeMap<u16, u64>,
    invalid_bodies: u64,
    invalid_examples: Vec<String>,
    latencies: Latencies,
    bytes: u64,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            count: 0,
            errors: 0,
            statuses: BTreeMap::new(),
            errors_by_status: BTreeMap::new(),
            invalid_bodies: 0,
            invalid_examples: Vec::new(),
            latencies: Latencies::precise(),
            bytes: 0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    endpoints: BTreeMap<(String, String), Endpoint>,
    requests: u64,
    errors: u64,
    bytes: u64,
    statuses: BTreeMap<u16, u64>,
    exceptions: BTreeMap<String, u64>,
    latencies: Latencies,
    timeline: Timeline,
    executions: Executions,
    findings: Findings,
}

/// The shared recorder of a run.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner {
                endpoints: BTreeMap::new(),
                requests: 0,
                errors: 0,
                bytes: 0,
                statuses: BTreeMap::new(),
                exceptions: BTreeMap::new(),
                latencies: Latencies::precise(),
                timeline: Timeline::default(),
                executions: Executions::default(),
                findings: Findings::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn record(&self, s: Sample<'_>) {
        let at = self.elapsed();
        let mut inner = self.lock();
        let i = &mut *inner;
        i.requests += 1;
        i.bytes += s.bytes;
        *i.statuses.entry(s.status).or_default() += 1;
        i.latencies.record(s.latency);
        if s.error {
            i.errors += 1;
        }
        i.timeline.record(at, Some(s.latency), s.error);
        let e = i
            .endpoints
            .entry((s.method.to_owned(), s.endpoint.to_owned()))
            .or_default();
        e.count += 1;
        e.bytes += s.bytes;
        *e.statuses.entry(s.status).or_default() += 1;
        e.latencies.record(s.latency);
        if s.error {
            e.errors += 1;
            *e.errors_by_status.entry(s.status).or_default() += 1;
        }
    }

    /// A request that got no answer (`kind`: timeout, connect, body, …); record its 599 too.
    pub fn exception(&self, kind: &str) {
        *self.lock().exceptions.entry(kind.to_owned()).or_default() += 1;
    }

    /// An answer with the expected status but a wrong body: an error, not a success.
    pub fn invalid(&self, method: &str, endpoint: &str, reason: String) {
        let at = self.elapsed();
        let mut inner = self.lock();
        let i = &mut *inner;
        i.errors += 1;
        i.timeline.record(at, None, true);
        let e = i
            .endpoints
            .entry((method.to_owned(), endpoint.to_owned()))
            .or_default();
        e.errors += 1;
        e.invalid_bodies += 1;
        if e.invalid_examples.len() < EXAMPLES && !e.invalid_examples.contains(&reason) {
            e.invalid_examples.push(reason);
        }
    }

    /// Bytes of a streamed body read after its answer was recorded.
    pub fn add_bytes(&self, method: &str, endpoint: &str, bytes: u64) {
        let mut inner = self.lock();
        inner.bytes += bytes;
        if let Some(e) = inner
            .endpoints
            .get_mut(&(method.to_owned(), endpoint.to_owned()))
        {
            e.bytes += bytes;
        }
    }

    pub fn executions<R>(&self, f: impl FnOnce(&mut Executions) -> R) -> R {
        f(&mut self.lock().executions)
    }

    pub fn finding(&self, mut finding: Finding) {
        finding.at_s = (self.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        self.lock().findings.add(finding);
    }

    /// Figures for the live progress line.
    pub fn progress(&self) -> Progress {
        let elapsed = self.elapsed();
        let inner = self.lock();
        let (last_requests, _) = inner.timeline.last_second(elapsed);
        Progress {
            elapsed,
            requests: inner.requests,
            errors: inner.errors,
            requests_per_second: last_requests,
            p50_ms: inner.latencies.quantile_ms(0.50),
            p99_ms: inner.latencies.quantile_ms(0.99),
            findings: inner.findings.total(),
        }
    }

    /// Everything measured so far, summarised.
    pub fn report(&self) -> StatsReport {
        let elapsed = self.elapsed();
        let inner = self.lock();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut groups: BTreeMap<Group, (u64, u64, Latencies)> = BTreeMap::new();
        let endpoints = inner
            .endpoints
            .iter()
            .map(|((method, path), e)| {
                let group = group_of(method, path);
                let g = groups
                    .entry(group)
                    .or_insert_with(|| (0, 0, Latencies::precise()));
                g.0 += e.count;
                g.1 += e.errors;
                g.2.add(&e.latencies);
                EndpointReport {
                    method: method.clone(),
                    path: path.clone(),
                    group,
                    count: e.count,
                    errors: e.errors,
                    statuses: keyed(&e.statuses),
                    errors_by_status: keyed(&e.errors_by_status),
                    invalid_bodies: e.invalid_bodies,
                    invalid_examples: e.invalid_examples.clone(),
                    latency_ms: e.latencies.summary(),
                    bytes: e.bytes,
                }
            })
            .collect();
        let groups = groups
            .into_iter()
            .map(|(group, (count, errors, latencies))| {
                (
                    group,
                    GroupReport {
                        count,
                        errors,
                        latency_ms: latencies.summary(),
                    },
                )
            })
            .collect();
        StatsReport {
            elapsed_s: (secs * 1000.0).round() / 1000.0,
            totals: Totals {
                requests: inner.requests,
                errors: inner.errors,
                error_rate: if inner.requests == 0 {
                    0.0
                } else {
                    (inner.errors as f64 / inner.requests as f64 * 1e4).round() / 1e4
                },
                requests_per_second: (inner.requests as f64 / secs * 100.0).round() / 100.0,
                bytes: inner.bytes,
                statuses: keyed(&inner.statuses),
                exceptions: inner.exceptions.clone(),
                rate_limited: inner.statuses.get(&429).copied().unwrap_or(0),
                latency_ms: inner.latencies.summary(),
            },
            groups,
            endpoints,
            timeline: inner.timeline.clone().finish(elapsed),
            latency_histogram: inner.latencies.buckets(),
            executions: inner.executions.report(elapsed),
            findings: inner.findings.report(),
        }
    }
}

fn keyed(m: &BTreeMap<u16, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Figures shown on the live progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed: Duration,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub findings: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub requests_per_second: f64,
    pub bytes: u64,
    /// Every answer by status (599: no answer, see `exceptions`).
    pub statuses: BTreeMap<String, u64>,
    /// Requests without an answer, by kind (`timeout`, `connect`, `body`, `other`).
    pub exceptions: BTreeMap<String, u64>,
    /// Answers 429: nonzero means the run measured the server's rate limits too.
    pub rate_limited: u64,
    pub latency_ms: LatencySummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    pub method: String,
    /// The path template (`/api/v1/executions/{execution_id}/result`).
    pub path: String,
    pub group: Group,
    pub count: u64,
    pub errors: u64,
    pub statuses: BTreeMap<String, u64>,
    pub errors_by_status: BTreeMap<String, u64>,
    /// Answers with the expected status whose body was wrong (counted in `errors`).
    pub invalid_bodies: u64,
    pub invalid_examples: Vec<String>,
    pub latency_ms: LatencySummary,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub count: u64,
    pub errors: u64,
    pub latency_ms: LatencySummary,
}

/// The measured part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub elapsed_s: f64,
    pub totals: Totals,
    /// Endpoints grouped by what their latency means (see [`Group`]).
    pub groups: BTreeMap<Group, GroupReport>,
    pub endpoints: Vec<EndpointReport>,
    pub timeline: Vec<Second>,
    pub latency_histogram: Vec<Bucket>,
    pub executions: ExecutionReport,
    pub findings: FindingsReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(method: &'a str, endpoint: &'a str, status: u16, ms: u64) -> Sample<'a> {
        Sample {
            method,
            endpoint,
            status,
            latency: Duration::from_millis(ms),
            bytes: 10,
            error: status >= 400,
        }
    }

    #[test]
    fn endpoints_totals_and_groups_agree() {
        let stats = Stats::new();
        stats.record(sample("GET", "/api/v1/auth/me", 200, 2));
        stats.record(sample("GET", "/api/v1/auth/me", 200, 4));
        stats.record(sample("POST", "/api/v1/execute", 200, 8));
        stats.record(sample("GET", "/api/v1/scripts", NO_ANSWER, 30_000));
        stats.exception("timeout");
        stats.invalid("GET", "/api/v1/auth/me", "username differs".to_owned());
        stats.add_bytes("POST", "/api/v1/execute", 5);
        let r = stats.report();
        assert_eq!(r.totals.requests, 4);
        assert_eq!(r.totals.errors, 2);
        assert_eq!(r.totals.bytes, 45);
        assert_eq!(r.totals.statuses["599"], 1);
        assert_eq!(r.totals.exceptions["timeout"], 1);
        let me = r
            .endpoints
            .iter()
            .find(|e| e.path == "/api/v1/auth/me")
            .expect("me");
        assert_eq!((me.count, me.errors, me.invalid_bodies), (2, 1, 1));
        assert_eq!(me.invalid_examples, ["username differs"]);
        assert!((me.latency_ms.max - 4.0).abs() <= 0.004);
        let counted: u64 = r.groups.values().map(|g| g.count).sum();
        assert_eq!(counted, r.totals.requests);
        assert_eq!(r.groups[&Group::Execution].count, 1);
        assert_eq!(r.timeline.iter().map(|s| s.requests).sum::<u64>(), 4);
        assert_eq!(r.timeline.iter().map(|s| s.errors).sum::<u64>(), 2);
    }

    #[test]
    fn a_report_can_be_taken_while_recording_goes_on() {
        let stats = Stats::new();
        stats.record(sample("GET", "/x", 200, 1));
        let first = stats.report();
        stats.record(sample("GET", "/x", 200, 1));
        assert_eq!(first.totals.requests, 1);
        assert_eq!(stats.report().totals.requests, 2);
    }
}
