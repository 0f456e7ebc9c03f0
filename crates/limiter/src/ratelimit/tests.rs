//! What only the in-memory limiter does: dropping idle buckets. The port's behaviour is checked
//! by the conformance suite (`integr8s_core::rate_limiter_test_suite!`, in `tests/`).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use integr8s_core::ports::ratelimit::{LimitSpec, RateLimitAlgorithm, RateLimiter};

use super::MemoryRateLimiter;

fn t(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
}

fn spec(algorithm: RateLimitAlgorithm, requests: u32, burst: f64) -> LimitSpec {
    LimitSpec {
        algorithm,
        requests,
        window: Duration::from_secs(60),
        burst_multiplier: burst,
    }
}

#[tokio::test]
async fn idle_buckets_are_swept() {
    let l = MemoryRateLimiter::new();
    let s = spec(RateLimitAlgorithm::SlidingWindow, 5, 1.0);
    for i in 1..super::SWEEP_EVERY {
        l.check(&format!("k{i}"), &s, t(0)).await.unwrap();
    }
    l.check("late", &s, t(120_000)).await.unwrap();
    assert!(l.len() < 3, "idle buckets were kept: {}", l.len());
}
