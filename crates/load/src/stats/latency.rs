//! Latency histograms (microseconds, HdrHistogram) and their summary in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram keeps apart (longer ones are counted at this value): one hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, with `sigfig` significant decimal digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    /// Three significant digits: for totals and per-endpoint figures.
    pub fn precise() -> Self {
        Self::with_sigfig(3)
    }

    /// Two significant digits: for the many short-lived histograms of the timeline.
    pub fn coarse() -> Self {
        Self::with_sigfig(2)
    }

    fn with_sigfig(sigfig: u8) -> Self {
        // The bounds are constants that HdrHistogram accepts; a failure here is a bug.
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, sigfig)
            .unwrap_or_else(|e| unreachable!("histogram bounds: {e}"));
        Self(histogram)
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency at `quantile` (0..=1), in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        ms(self.0.value_at_quantile(quantile))
    }

    pub fn summary(&self) -> LatencySummary {
        if self.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            min: ms(self.0.min()),
            p50: self.quantile_ms(0.50),
            p90: self.quantile_ms(0.90),
            p99: self.quantile_ms(0.99),
            max: ms(self.0.max()),
            mean: round3(self.0.mean() / 1000.0),
        }
    }

    /// Counts in buckets whose upper bounds double from 0.1 ms on, up to the largest value.
    pub fn buckets(&self) -> Vec<Bucket> {
        if self.is_empty() {
            return Vec::new();
        }
        self.0
            .iter_log(100, 2.0)
            .map(|v| Bucket {
                le_ms: ms(v.value_iterated_to()),
                count: v.count_since_last_iteration(),
            })
            .collect()
    }

    pub fn add(&mut self, other: &Latencies) {
        // Both sides share the same bounds, so adding cannot fail; a failure is a bug.
        self.0
            .add(&other.0)
            .unwrap_or_else(|e| unreachable!("adding histograms: {e}"));
    }
}

fn ms(micros: u64) -> f64 {
    round3(micros as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Latency figures of a set of requests, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Requests whose latency was at most `le_ms` (and above the previous bucket's bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    pub le_ms: f64,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(values_ms: impl IntoIterator<Item = u64>) -> Latencies {
        let mut h = Latencies::precise();
        for v in values_ms {
            h.record(Duration::from_millis(v));
        }
        h
    }

    #[test]
    fn percentiles_of_one_to_a_hundred() {
        let s = filled(1..=100).summary();
        // Values come back as the upper end of their bucket (within 0.1 %).
        assert!((s.min - 1.0).abs() <= 0.001, "{s:?}");
        assert!((s.max - 100.0).abs() <= 0.1, "{s:?}");
        // Three significant digits: each percentile lands on its value within 0.1 %.
        assert!((s.p50 - 50.0).abs() <= 0.05, "{s:?}");
        assert!((s.p90 - 90.0).abs() <= 0.09, "{s:?}");
        assert!((s.p99 - 99.0).abs() <= 0.1, "{s:?}");
        assert!((s.mean - 50.5).abs() <= 0.06, "{s:?}");
    }

    #[test]
    fn one_slow_request_among_many_shows_at_p99_only_when_it_is_one_percent() {
        let mut values: Vec<u64> = vec![10; 989];
        values.extend([1000; 11]);
        let s = filled(values).summary();
        assert!((s.p50 - 10.0).abs() < 0.01, "{s:?}");
        assert!((s.p90 - 10.0).abs() < 0.01, "{s:?}");
        assert!((s.p99 - 1000.0).abs() <= 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() <= 1.0, "{s:?}");
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(Latencies::precise().summary(), LatencySummary::default());
        assert!(Latencies::precise().buckets().is_empty());
    }

    #[test]
    fn latencies_past_an_hour_and_below_a_microsecond_are_kept_at_the_bounds() {
        let mut h = Latencies::coarse();
        h.record(Duration::from_secs(7200));
        h.record(Duration::from_nanos(10));
        assert_eq!(h.len(), 2);
        let s = h.summary();
        assert!(s.min <= 0.002, "{s:?}");
        assert!((s.max - 3_600_000.0).abs() / 3_600_000.0 < 0.01, "{s:?}");
    }

    #[test]
    fn buckets_count_every_request_once() {
        let h = filled([1, 2, 3, 50, 400, 400]);
        let buckets = h.buckets();
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 6);
        assert!(buckets.windows(2).all(|w| w[0].le_ms < w[1].le_ms));
    }

    #[test]
    fn adding_merges_counts() {
        let mut a = filled([1, 2]);
        a.add(&filled([3]));
        assert_eq!(a.len(), 3);
        assert!((a.summary().max - 3.0).abs() <= 0.003);
    }
}
