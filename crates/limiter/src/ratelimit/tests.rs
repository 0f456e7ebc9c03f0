//! Deterministic checks of the algorithms through the port, with an injected clock.

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
async fn sliding_window_allows_the_limit_then_refuses_until_the_oldest_leaves() {
    let l = MemoryRateLimiter::new();
    let s = spec(RateLimitAlgorithm::SlidingWindow, 3, 1.5);
    for (i, left) in [2, 1, 0].into_iter().enumerate() {
        let d = l.check("k", &s, t(i as i64 * 1000)).await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (3, left));
    }
    let refused = l.check("k", &s, t(10_000)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    assert_eq!(refused.retry_after_secs, 50, "the first hit leaves at 60 s");
    // Refused requests are not counted: once the first hit leaves, one slot opens.
    let d = l.check("k", &s, t(60_000)).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
    assert!(!l.check("k", &s, t(60_500)).await.unwrap().allowed);
    assert!(l.check("k", &s, t(61_000)).await.unwrap().allowed);
}

#[tokio::test]
async fn buckets_are_independent() {
    let l = MemoryRateLimiter::new();
    let s = spec(RateLimitAlgorithm::SlidingWindow, 1, 1.0);
    assert!(l.check("a", &s, t(0)).await.unwrap().allowed);
    assert!(!l.check("a", &s, t(1)).await.unwrap().allowed);
    assert!(l.check("b", &s, t(1)).await.unwrap().allowed);
}

#[tokio::test]
async fn token_bucket_bursts_then_refills_at_the_rate() {
    let l = MemoryRateLimiter::new();
    // 6 per minute with burst 1.5: capacity 9, one token every 10 s.
    let s = spec(RateLimitAlgorithm::TokenBucket, 6, 1.5);
    for i in 0..9 {
        let d = l.check("k", &s, t(0)).await.unwrap();
        assert!(d.allowed, "burst request {i}");
        assert_eq!(d.limit, 9);
        assert_eq!(d.remaining, 8 - i);
    }
    let refused = l.check("k", &s, t(0)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 10);
    assert!(!l.check("k", &s, t(9_999)).await.unwrap().allowed);
    assert!(l.check("k", &s, t(10_000)).await.unwrap().allowed);
    assert!(!l.check("k", &s, t(10_001)).await.unwrap().allowed);
    // After a long pause the bucket is full again, never above capacity.
    let d = l.check("k", &s, t(3_600_000)).await.unwrap();
    assert_eq!(d.remaining, 8);
}

#[tokio::test]
async fn leaky_bucket_has_no_burst_and_fixed_window_resets_on_the_boundary() {
    let l = MemoryRateLimiter::new();
    let leaky = spec(RateLimitAlgorithm::LeakyBucket, 2, 3.0);
    assert!(l.check("leaky", &leaky, t(0)).await.unwrap().allowed);
    assert!(l.check("leaky", &leaky, t(0)).await.unwrap().allowed);
    assert!(!l.check("leaky", &leaky, t(0)).await.unwrap().allowed);

    let fixed = spec(RateLimitAlgorithm::FixedWindow, 2, 1.0);
    let base = 1_700_000_040_000_i64 - 1_700_000_000_000; // t(base) is on a minute boundary
    assert!(
        l.check("fixed", &fixed, t(base + 59_000))
            .await
            .unwrap()
            .allowed
    );
    assert!(
        l.check("fixed", &fixed, t(base + 59_500))
            .await
            .unwrap()
            .allowed
    );
    let refused = l.check("fixed", &fixed, t(base + 59_900)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 1);
    assert!(
        l.check("fixed", &fixed, t(base + 60_000))
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn usage_and_reset_work_by_prefix() {
    let l = MemoryRateLimiter::new();
    let s = spec(RateLimitAlgorithm::SlidingWindow, 5, 1.0);
    l.check("user:1:^/a", &s, t(0)).await.unwrap();
    l.check("user:1:^/a", &s, t(0)).await.unwrap();
    l.check("user:1:^/b", &s, t(0)).await.unwrap();
    l.check("user:2:^/a", &s, t(0)).await.unwrap();
    let usage = l.usage("user:1:", t(1)).await.unwrap();
    let got: Vec<_> = usage
        .iter()
        .map(|u| (u.key.as_str(), u.remaining))
        .collect();
    assert_eq!(got, [("user:1:^/a", 3), ("user:1:^/b", 4)]);
    assert_eq!(usage[0].algorithm, RateLimitAlgorithm::SlidingWindow);
    assert_eq!(l.reset("user:1:").await.unwrap(), 2);
    assert!(l.usage("user:1:", t(1)).await.unwrap().is_empty());
    assert_eq!(l.usage("user:2:", t(1)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_changed_algorithm_starts_a_fresh_bucket() {
    let l = MemoryRateLimiter::new();
    let sliding = spec(RateLimitAlgorithm::SlidingWindow, 1, 1.0);
    assert!(l.check("k", &sliding, t(0)).await.unwrap().allowed);
    assert!(!l.check("k", &sliding, t(1)).await.unwrap().allowed);
    let tokens = spec(RateLimitAlgorithm::TokenBucket, 1, 1.0);
    assert!(l.check("k", &tokens, t(2)).await.unwrap().allowed);
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
