//! Per-second figures: requests, errors and latency percentiles of the requests that ended in
//! each second of the run. Seconds are summarised as soon as no more answers can land in them,
//! so a long run keeps five numbers per second, not a histogram.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::latency::Latencies;

/// Seconds kept open for answers that arrive slightly out of order.
const OPEN_SECONDS: u64 = 2;

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the start of the run.
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone)]
struct Open {
    requests: u64,
    errors: u64,
    latencies: Latencies,
}

/// The timeline is summarised on a copy, so a report can be taken while the run goes on.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    closed: Vec<Second>,
    open: BTreeMap<u64, Open>,
}

impl Timeline {
    /// Counts an answer that ended `at` after the start.
    pub fn record(&mut self, at: Duration, latency: Option<Duration>, error: bool) {
        let mut second = at.as_secs();
        self.close_before(second.saturating_sub(OPEN_SECONDS));
        if let Some(last) = self.closed.last().filter(|c| c.second >= second) {
            // Too late for a summarised second: count it in the oldest one still open.
            second = last.second + 1;
        }
        let open = self.open.entry(second).or_insert_with(|| Open {
            requests: 0,
            errors: 0,
            latencies: Latencies::coarse(),
        });
        if let Some(latency) = latency {
            open.requests += 1;
            open.latencies.record(latency);
        }
        if error {
            open.errors += 1;
        }
    }

    fn close_before(&mut self, second: u64) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= second {
                break;
            }
            let (s, open) = entry.remove_entry();
            // Seconds without any answer are kept as zeros, so the timeline has no holes.
            let next = self.closed.last().map_or(0, |c| c.second + 1);
            for idle in next..s {
                self.closed.push(Second {
                    second: idle,
                    requests: 0,
                    errors: 0,
                    p50_ms: 0.0,
                    p90_ms: 0.0,
                    p99_ms: 0.0,
                });
            }
            self.closed.push(Second {
                second: s,
                requests: open.requests,
                errors: open.errors,
                p50_ms: open.latencies.quantile_ms(0.50),
                p90_ms: open.latencies.quantile_ms(0.90),
                p99_ms: open.latencies.quantile_ms(0.99),
            });
        }
    }

    /// Answers and errors in the last complete second before `now`.
    pub fn last_second(&self, now: Duration) -> (u64, u64) {
        let wanted = now.as_secs().saturating_sub(1);
        if let Some(open) = self.open.get(&wanted) {
            return (open.requests, open.errors);
        }
        self.closed
            .iter()
            .rev()
            .find(|c| c.second == wanted)
            .map_or((0, 0), |c| (c.requests, c.errors))
    }

    /// Every second up to `end` (exclusive of seconds that have not begun).
    pub fn finish(mut self, end: Duration) -> Vec<Second> {
        self.close_before(u64::MAX);
        let last = end.as_secs_f64().ceil() as u64;
        let next = self.closed.last().map_or(0, |c| c.second + 1);
        for idle in next..last {
            self.closed.push(Second {
                second: idle,
                requests: 0,
                errors: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
            });
        }
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn answers_land_in_the_second_they_end_in() {
        let mut t = Timeline::default();
        t.record(at(100), Some(at(5)), false);
        t.record(at(900), Some(at(7)), true);
        t.record(at(1500), Some(at(9)), false);
        let s = t.finish(at(2000));
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].requests, s[0].errors), (2, 1));
        assert_eq!((s[1].requests, s[1].errors), (1, 0));
        assert!((s[1].p99_ms - 9.0).abs() < 0.1);
    }

    #[test]
    fn idle_seconds_are_zeros_not_holes() {
        let mut t = Timeline::default();
        t.record(at(100), Some(at(1)), false);
        t.record(at(5100), Some(at(1)), false);
        let s = t.finish(at(7000));
        assert_eq!(s.len(), 7);
        assert_eq!(
            s.iter().map(|x| x.requests).collect::<Vec<_>>(),
            [1, 0, 0, 0, 0, 1, 0]
        );
        assert!(s.iter().enumerate().all(|(i, x)| x.second == i as u64));
    }

    #[test]
    fn a_late_answer_is_counted_not_lost() {
        let mut t = Timeline::default();
        t.record(at(10_000), Some(at(1)), false);
        t.record(at(1_000), Some(at(1)), false);
        let s = t.finish(at(11_000));
        assert_eq!(s.iter().map(|x| x.requests).sum::<u64>(), 2);
    }

    #[test]
    fn closed_seconds_keep_no_histogram() {
        let mut t = Timeline::default();
        for ms in (0..600_000).step_by(250) {
            t.record(at(ms), Some(at(3)), false);
        }
        assert!(t.open.len() <= OPEN_SECONDS as usize + 1);
        assert_eq!(t.closed.len() as u64 + t.open.len() as u64, 600);
    }

    #[test]
    fn the_last_complete_second_is_reported() {
        let mut t = Timeline::default();
        for ms in [2100, 2200, 2300, 3100] {
            t.record(at(ms), Some(at(1)), ms == 2200);
        }
        assert_eq!(t.last_second(at(3500)), (3, 1));
    }
}
