//! The bookkeeping of rate-limit checks that fail open: a counter, a warning at most every
//! [`WARN_EVERY`] (with how many failures it stands for), and a note when Redis answers again.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one warning per this period, however many checks fail.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct FailOpen {
    started: Instant,
    total: AtomicU64,
    /// Failures since the last warning.
    unreported: AtomicU64,
    /// Milliseconds after `started` before which no new warning is logged.
    quiet_until_ms: AtomicU64,
    failing: AtomicBool,
}

impl FailOpen {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            total: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            quiet_until_ms: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts one check let through because Redis did not answer.
    pub(crate) fn record(&self, error: &dyn Display) {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.record_at(now_ms, error);
    }

    /// `record` at `now_ms` after start; returns whether it logged a warning.
    fn record_at(&self, now_ms: u64, error: &dyn Display) -> bool {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        integr8s_telemetry::metrics::counter!(
            integr8s_telemetry::catalogue::RATE_LIMIT_FAIL_OPEN_TOTAL
        )
        .increment(1);
        self.unreported.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        let quiet_until = self.quiet_until_ms.load(Ordering::Relaxed);
        let next = now_ms.saturating_add(WARN_EVERY.as_millis() as u64);
        if now_ms < quiet_until
            || self
                .quiet_until_ms
                .compare_exchange(quiet_until, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        let failures = self.unreported.swap(0, Ordering::Relaxed);
        tracing::warn!(
            error = %error,
            failures,
            fail_open_total = total,
            "Redis unreachable: rate limits are not applied (requests are allowed) until it answers again"
        );
        true
    }

    /// Notes a check that Redis answered; logs once when that ends a failure.
    pub(crate) fn answered(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                fail_open_total = self.total(),
                "Redis answers again: rate limits apply"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_and_every_failure_counted() {
        let f = FailOpen::new();
        let every = WARN_EVERY.as_millis() as u64;
        assert!(f.record_at(0, &"down"), "the first failure warns");
        let warned = (1..1000).filter(|ms| f.record_at(*ms, &"down")).count();
        assert_eq!(warned, 0, "no second warning within the period");
        assert!(
            f.record_at(every, &"down"),
            "a warning once the period is over"
        );
        assert!(!f.record_at(every + 1, &"down"));
        assert_eq!(f.total(), 1002);
        f.answered();
        assert!(!f.failing.load(Ordering::Relaxed));
        assert_eq!(f.total(), 1002, "recovery keeps the count");
    }
}
