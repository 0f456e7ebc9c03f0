//! Rate limiter conformance suite: the counting algorithms over an injected clock, independent
//! buckets, usage and reset by literal prefix, and atomic checks under concurrency. Run with
//! [`rate_limiter_test_suite!`](crate::rate_limiter_test_suite).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::ports::ratelimit::{LimitSpec, RateLimitAlgorithm, RateLimiter};

/// Generates one `#[tokio::test]` per limiter case. `$make` is an expression (re-evaluated per
/// test) giving a future of `Fixture<dyn RateLimiter>` over an empty limiter.
#[macro_export]
macro_rules! rate_limiter_test_suite {
    ($make:expr) => {
        $crate::rate_limiter_test_suite!(@cases $make;
            sliding_window_allows_the_limit_then_refuses_until_the_oldest_leaves,
            buckets_are_independent,
            token_bucket_bursts_then_refills_at_the_rate,
            leaky_bucket_has_no_burst_and_fixed_window_resets_on_the_boundary,
            decisions_announce_when_the_bucket_is_full_again,
            usage_and_reset_work_by_prefix,
            usage_reports_each_algorithm_at_the_given_time,
            prefixes_are_literal,
            a_changed_algorithm_starts_a_fresh_bucket,
            a_changed_limit_keeps_what_was_counted,
            concurrent_checks_never_exceed_the_limit,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testsuite::store::Fixture<dyn $crate::ports::RateLimiter> =
                    $make.await;
                $crate::testsuite::ratelimit::$case(fixture.store.clone()).await;
            }
        )+
    };
}

type L = Arc<dyn RateLimiter>;

const BASE_MS: i64 = 1_700_000_000_000;

fn t(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(BASE_MS + ms).unwrap()
}

fn spec(algorithm: RateLimitAlgorithm, requests: u32, burst: f64) -> LimitSpec {
    LimitSpec {
        algorithm,
        requests,
        window: Duration::from_secs(60),
        burst_multiplier: burst,
    }
}

async fn allowed(l: &L, key: &str, s: &LimitSpec, at: DateTime<Utc>) -> bool {
    l.check(key, s, at).await.unwrap().allowed
}

pub async fn sliding_window_allows_the_limit_then_refuses_until_the_oldest_leaves(l: L) {
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
    assert!(!allowed(&l, "k", &s, t(60_500)).await);
    assert!(allowed(&l, "k", &s, t(61_000)).await);
}

pub async fn buckets_are_independent(l: L) {
    let s = spec(RateLimitAlgorithm::SlidingWindow, 1, 1.0);
    assert!(allowed(&l, "a", &s, t(0)).await);
    assert!(!allowed(&l, "a", &s, t(1)).await);
    assert!(allowed(&l, "b", &s, t(1)).await);
}

pub async fn token_bucket_bursts_then_refills_at_the_rate(l: L) {
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
    assert!(!allowed(&l, "k", &s, t(9_999)).await);
    assert!(allowed(&l, "k", &s, t(10_000)).await);
    assert!(!allowed(&l, "k", &s, t(10_001)).await);
    // After a long pause the bucket is full again, never above capacity.
    let d = l.check("k", &s, t(3_600_000)).await.unwrap();
    assert_eq!(d.remaining, 8);
}

pub async fn leaky_bucket_has_no_burst_and_fixed_window_resets_on_the_boundary(l: L) {
    let leaky = spec(RateLimitAlgorithm::LeakyBucket, 2, 3.0);
    assert!(allowed(&l, "leaky", &leaky, t(0)).await);
    assert!(allowed(&l, "leaky", &leaky, t(0)).await);
    assert!(!allowed(&l, "leaky", &leaky, t(0)).await);

    let fixed = spec(RateLimitAlgorithm::FixedWindow, 2, 1.0);
    let base = 1_700_000_040_000_i64 - BASE_MS; // t(base) is on a minute boundary
    assert!(allowed(&l, "fixed", &fixed, t(base + 59_000)).await);
    assert!(allowed(&l, "fixed", &fixed, t(base + 59_500)).await);
    let refused = l.check("fixed", &fixed, t(base + 59_900)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 1);
    assert!(allowed(&l, "fixed", &fixed, t(base + 60_000)).await);
}

pub async fn decisions_announce_when_the_bucket_is_full_again(l: L) {
    let sliding = spec(RateLimitAlgorithm::SlidingWindow, 2, 1.0);
    assert_eq!(
        l.check("s", &sliding, t(0)).await.unwrap().reset_at,
        t(60_000)
    );
    assert_eq!(
        l.check("s", &sliding, t(5_000)).await.unwrap().reset_at,
        t(65_000)
    );
    let refused = l.check("s", &sliding, t(6_000)).await.unwrap();
    assert_eq!(
        (refused.reset_at, refused.retry_after_secs),
        (t(65_000), 54)
    );

    // Capacity 6, one token every 10 s: two taken are back after 20 s.
    let tokens = spec(RateLimitAlgorithm::TokenBucket, 6, 1.0);
    l.check("t", &tokens, t(0)).await.unwrap();
    let d = l.check("t", &tokens, t(0)).await.unwrap();
    assert_eq!((d.limit, d.remaining, d.reset_at), (6, 4, t(20_000)));

    let fixed = spec(RateLimitAlgorithm::FixedWindow, 1, 1.0);
    let start = 1_700_000_040_000_i64 - BASE_MS;
    let d = l.check("f", &fixed, t(start + 1_000)).await.unwrap();
    assert_eq!((d.remaining, d.reset_at), (0, t(start + 60_000)));
    let refused = l.check("f", &fixed, t(start + 30_500)).await.unwrap();
    assert_eq!(
        (refused.reset_at, refused.retry_after_secs),
        (t(start + 60_000), 30)
    );
}

pub async fn usage_and_reset_work_by_prefix(l: L) {
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
    assert_eq!(l.reset("user:3:").await.unwrap(), 0);
}

pub async fn usage_reports_each_algorithm_at_the_given_time(l: L) {
    let tokens = spec(RateLimitAlgorithm::TokenBucket, 6, 1.5);
    let leaky = spec(RateLimitAlgorithm::LeakyBucket, 4, 1.5);
    let fixed = spec(RateLimitAlgorithm::FixedWindow, 3, 1.0);
    let sliding = spec(RateLimitAlgorithm::SlidingWindow, 3, 1.0);
    let start = 1_700_000_040_000_i64 - BASE_MS;
    for _ in 0..3 {
        l.check("u:tokens", &tokens, t(start)).await.unwrap();
        l.check("u:leaky", &leaky, t(start)).await.unwrap();
    }
    l.check("u:fixed", &fixed, t(start)).await.unwrap();
    l.check("u:sliding", &sliding, t(start)).await.unwrap();
    l.check("u:sliding", &sliding, t(start + 30_000))
        .await
        .unwrap();

    let at = |ms: i64| {
        let l = l.clone();
        async move {
            l.usage("u:", t(start + ms))
                .await
                .unwrap()
                .into_iter()
                .map(|u| (u.key, u.algorithm, u.remaining))
                .collect::<Vec<_>>()
        }
    };
    use RateLimitAlgorithm as A;
    let key = |k: &str| k.to_owned();
    assert_eq!(
        at(1).await,
        [
            (key("u:fixed"), A::FixedWindow, 2),
            (key("u:leaky"), A::LeakyBucket, 1),
            (key("u:sliding"), A::SlidingWindow, 1),
            (key("u:tokens"), A::TokenBucket, 6),
        ]
    );
    // 20 s later: two tokens back (one per 10 s), one leaky token back (one per 15 s); a
    // minute later the fixed window has rolled and the first sliding hit has left.
    assert_eq!(
        at(20_000).await,
        [
            (key("u:fixed"), A::FixedWindow, 2),
            (key("u:leaky"), A::LeakyBucket, 2),
            (key("u:sliding"), A::SlidingWindow, 1),
            (key("u:tokens"), A::TokenBucket, 8),
        ]
    );
    assert_eq!(
        at(60_000).await,
        [
            (key("u:fixed"), A::FixedWindow, 3),
            (key("u:leaky"), A::LeakyBucket, 4),
            (key("u:sliding"), A::SlidingWindow, 2),
            (key("u:tokens"), A::TokenBucket, 9),
        ]
    );
}

pub async fn prefixes_are_literal(l: L) {
    let s = spec(RateLimitAlgorithm::SlidingWindow, 5, 1.0);
    let keys = [
        "ip:1:^/api/v1/.*",
        "ip:1:^/api/v1/execute",
        "ip:10:^/api/v1/.*",
        "ip:[1]:^/x",
        "ip:*:^/x",
        "ip:?:^/x",
        r"ip:\:^/x",
    ];
    for k in keys {
        l.check(k, &s, t(0)).await.unwrap();
    }
    let names = |prefix: &'static str| {
        let l = l.clone();
        async move {
            l.usage(prefix, t(1))
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names("ip:1:").await,
        ["ip:1:^/api/v1/.*", "ip:1:^/api/v1/execute"]
    );
    assert_eq!(names("ip:1:^/api/v1/.").await, ["ip:1:^/api/v1/.*"]);
    assert_eq!(names("ip:*").await, ["ip:*:^/x"]);
    assert_eq!(names("ip:?").await, ["ip:?:^/x"]);
    assert_eq!(names("ip:[").await, ["ip:[1]:^/x"]);
    assert_eq!(names(r"ip:\").await, [r"ip:\:^/x"]);
    assert_eq!(names("").await.len(), keys.len());
    assert_eq!(l.reset("ip:[1]").await.unwrap(), 1);
    assert_eq!(l.reset("ip:*").await.unwrap(), 1);
    assert_eq!(names("").await.len(), keys.len() - 2);
}

pub async fn a_changed_algorithm_starts_a_fresh_bucket(l: L) {
    let sliding = spec(RateLimitAlgorithm::SlidingWindow, 1, 1.0);
    assert!(allowed(&l, "k", &sliding, t(0)).await);
    assert!(!allowed(&l, "k", &sliding, t(1)).await);
    let tokens = spec(RateLimitAlgorithm::TokenBucket, 1, 1.0);
    assert!(allowed(&l, "k", &tokens, t(2)).await);
}

pub async fn a_changed_limit_keeps_what_was_counted(l: L) {
    let five = spec(RateLimitAlgorithm::SlidingWindow, 5, 1.0);
    let two = spec(RateLimitAlgorithm::SlidingWindow, 2, 1.0);
    assert!(allowed(&l, "k", &five, t(0)).await);
    assert!(allowed(&l, "k", &five, t(1)).await);
    let refused = l.check("k", &two, t(2)).await.unwrap();
    assert!(!refused.allowed, "two requests were counted already");
    assert_eq!(refused.limit, 2);
    // Token and leaky buckets share their tokens: a leaky rule caps what the bucket holds.
    let tokens = spec(RateLimitAlgorithm::TokenBucket, 4, 2.0);
    let leaky = spec(RateLimitAlgorithm::LeakyBucket, 4, 2.0);
    assert_eq!(l.check("b", &tokens, t(0)).await.unwrap().remaining, 7);
    assert_eq!(l.check("b", &leaky, t(0)).await.unwrap().remaining, 3);
}

pub async fn concurrent_checks_never_exceed_the_limit(l: L) {
    use RateLimitAlgorithm as A;
    // (algorithm, requests, burst, allowance at one instant)
    let cases = [
        (A::SlidingWindow, 10, 1.0, 10),
        (A::FixedWindow, 10, 1.0, 10),
        (A::TokenBucket, 10, 1.5, 15),
        (A::LeakyBucket, 10, 1.5, 10),
    ];
    let start = 1_700_000_040_000_i64 - BASE_MS;
    for (algorithm, requests, burst, allowance) in cases {
        let s = spec(algorithm, requests, burst);
        let key = format!("race:{}", algorithm.as_str());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (l, key) = (l.clone(), key.clone());
                tokio::spawn(async move { l.check(&key, &s, t(start)).await.unwrap() })
            })
            .collect();
        let mut remaining = Vec::new();
        for task in tasks {
            let d = task.await.unwrap();
            if d.allowed {
                remaining.push(d.remaining);
            }
        }
        remaining.sort_unstable();
        let expected: Vec<u32> = (0..allowance).collect();
        assert_eq!(
            remaining, expected,
            "{algorithm:?}: each allowed request counted once"
        );
    }
}
