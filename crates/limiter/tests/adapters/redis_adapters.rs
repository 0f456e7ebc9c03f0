//! The conformance suites against the Redis adapters (a redis-server of their own per test),
//! then what only they do: key prefixes, expiry of their keys, reloading a script Redis lost,
//! and failing open while Redis is away or hangs.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use integr8s_core::ports::ratelimit::{LimitSpec, RateLimitAlgorithm};
use integr8s_core::ports::{KeyValue, RateLimiter};
use integr8s_core::testsuite::store::Fixture;
use integr8s_core::StoreError;
use integr8s_limiter::{RedisConfig, RedisConnection, RedisKeyValue, RedisRateLimiter};

use integr8s_limiter::testing::RedisServer;
use redis::aio::MultiplexedConnection;

/// Generous bound for Redis to be seen again; never a performance threshold.
const DEADLINE: Duration = Duration::from_secs(20);

fn connect(server: &RedisServer, prefix: &str) -> RedisConnection {
    RedisConnection::open(&RedisConfig::new(server.url(), prefix)).expect("a valid URL")
}

async fn limiter() -> Fixture<dyn RateLimiter> {
    let server = RedisServer::start().await;
    let limiter = RedisRateLimiter::new(connect(&server, "integr8s-test:"));
    Fixture::with_guard(Arc::new(limiter), server)
}

async fn key_value() -> Fixture<dyn KeyValue> {
    let server = RedisServer::start().await;
    let kv = RedisKeyValue::new(connect(&server, "integr8s-test:"));
    Fixture::with_guard(Arc::new(kv), server)
}

mod rate_limiter {
    integr8s_core::rate_limiter_test_suite!(super::limiter());
}

mod key_value {
    integr8s_core::key_value_test_suite!(super::key_value());
}

fn per_minute(algorithm: RateLimitAlgorithm, requests: u32) -> LimitSpec {
    LimitSpec {
        algorithm,
        requests,
        window: Duration::from_secs(60),
        burst_multiplier: 1.0,
    }
}

/// A plain connection to look at what the adapters left in Redis.
async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn allowed(l: &RedisRateLimiter, key: &str, spec: &LimitSpec) -> bool {
    l.check(key, spec, Utc::now()).await.unwrap().allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_with_their_own_prefix_share_one_redis() {
    let server = RedisServer::start().await;
    let (a, b) = (connect(&server, "blue:"), connect(&server, "green:"));
    let (limit_a, limit_b) = (
        RedisRateLimiter::new(a.clone()),
        RedisRateLimiter::new(b.clone()),
    );
    let (kv_a, kv_b) = (RedisKeyValue::new(a), RedisKeyValue::new(b));
    let one = per_minute(RateLimitAlgorithm::SlidingWindow, 1);
    assert!(allowed(&limit_a, "user:1:^/x", &one).await);
    assert!(!allowed(&limit_a, "user:1:^/x", &one).await);
    assert!(
        allowed(&limit_b, "user:1:^/x", &one).await,
        "green counts apart"
    );
    kv_a.set("k", "blue", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(kv_b.get("k").await.unwrap(), None);
    assert_eq!(kv_b.incr("k", Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(kv_a.get("k").await.unwrap().as_deref(), Some("blue"));

    assert_eq!(limit_a.reset("").await.unwrap(), 1);
    assert_eq!(limit_b.usage("", Utc::now()).await.unwrap().len(), 1);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "blue:kv:k",
            "green:kv:k",
            "green:rl:b:user:1:^/x",
            "green:rl:h:user:1:^/x"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_when_the_bucket_is_full_again() {
    let server = RedisServer::start().await;
    let conn = connect(&server, "p:");
    let limiter = RedisRateLimiter::new(conn.clone());
    let kv = RedisKeyValue::new(conn);
    let now = Utc::now();
    let sliding = per_minute(RateLimitAlgorithm::SlidingWindow, 5);
    limiter.check("s", &sliding, now).await.unwrap();
    // Six per minute: the one token taken is back after 10 s.
    let tokens = per_minute(RateLimitAlgorithm::TokenBucket, 6);
    limiter.check("t", &tokens, now).await.unwrap();
    let fixed = per_minute(RateLimitAlgorithm::FixedWindow, 5);
    limiter.check("f", &fixed, now).await.unwrap();
    kv.incr("c", Duration::from_secs(30)).await.unwrap();
    kv.incr("c", Duration::from_secs(3600)).await.unwrap();

    let mut c = raw(&server).await;
    let pttl = |key: &'static str| {
        let cmd = redis::cmd("PTTL").arg(key).clone();
        let mut c = c.clone();
        async move { cmd.query_async::<i64>(&mut c).await.unwrap() }
    };
    for (key, most) in [
        ("p:rl:b:s", 60_000),
        ("p:rl:h:s", 60_000),
        ("p:rl:b:t", 10_000),
        ("p:rl:b:f", 60_000),
        ("p:kv:c", 30_000),
    ] {
        let ttl = pttl(key).await;
        assert!(
            ttl > 0 && ttl <= most,
            "{key}: ttl {ttl} ms, expected in (0, {most}]"
        );
    }
    let hits: i64 = redis::cmd("EXISTS")
        .arg("p:rl:h:t")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(hits, 0, "only sliding windows keep a set of hits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_redis_lost_is_loaded_again() {
    let server = RedisServer::start().await;
    let conn = connect(&server, "p:");
    let limiter = RedisRateLimiter::new(conn.clone());
    let kv = RedisKeyValue::new(conn);
    let two = per_minute(RateLimitAlgorithm::SlidingWindow, 2);
    assert!(allowed(&limiter, "k", &two).await);
    assert_eq!(kv.incr("c", Duration::from_secs(60)).await.unwrap(), 1);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert!(allowed(&limiter, "k", &two).await);
    assert!(
        !allowed(&limiter, "k", &two).await,
        "the count went on after the reload"
    );
    assert_eq!(kv.incr("c", Duration::from_secs(60)).await.unwrap(), 2);
    assert_eq!(limiter.fail_open_total(), 0);
}

/// Checks a fresh limit-1 bucket until Redis answers again (its second check is refused).
async fn until_redis_counts(limiter: &RedisRateLimiter) {
    let one = per_minute(RateLimitAlgorithm::SlidingWindow, 1);
    let counted = tokio::time::timeout(DEADLINE, async {
        for i in 0u64.. {
            let key = format!("probe:{i}");
            if allowed(limiter, &key, &one).await && !allowed(limiter, &key, &one).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        counted.is_ok(),
        "Redis did not count again within {DEADLINE:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_fails_open_while_redis_is_down_and_recovers() {
    let mut server = RedisServer::start().await;
    let conn = connect(&server, "p:");
    let limiter = RedisRateLimiter::new(conn.clone());
    let kv = RedisKeyValue::new(conn.clone());
    let two = per_minute(RateLimitAlgorithm::SlidingWindow, 2);
    assert!(allowed(&limiter, "k", &two).await);
    assert!(allowed(&limiter, "k", &two).await);
    assert!(!allowed(&limiter, "k", &two).await);
    assert_eq!(limiter.fail_open_total(), 0);

    server.stop();
    for i in 1..=5 {
        let d = limiter.check("k", &two, Utc::now()).await.unwrap();
        assert!(d.allowed, "check {i} fails open");
        assert_eq!(limiter.fail_open_total(), i);
    }
    assert!(matches!(kv.get("k").await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        limiter.usage("", Utc::now()).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(conn.ping().await.is_err());

    server.restart().await;
    // The first check after Redis is back is counted already.
    assert!(
        allowed(&limiter, "k", &two).await,
        "the restarted Redis is empty"
    );
    assert!(allowed(&limiter, "k", &two).await);
    assert!(!allowed(&limiter, "k", &two).await);
    assert_eq!(
        limiter.fail_open_total(),
        5,
        "no failure once Redis is back"
    );
    assert_eq!(kv.incr("c", Duration::from_secs(60)).await.unwrap(), 1);
    conn.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_made_while_redis_is_down_connects_once_it_is_up() {
    let mut server = RedisServer::start().await;
    server.stop();
    let limiter = RedisRateLimiter::new(connect(&server, "p:"));
    let one = per_minute(RateLimitAlgorithm::SlidingWindow, 1);
    assert!(allowed(&limiter, "k", &one).await);
    assert!(
        allowed(&limiter, "k", &one).await,
        "nothing is counted without Redis"
    );
    assert_eq!(limiter.fail_open_total(), 2);
    server.restart().await;
    assert!(allowed(&limiter, "k", &one).await);
    assert!(
        !allowed(&limiter, "k", &one).await,
        "counted from the first check on"
    );
    assert_eq!(limiter.fail_open_total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_fails_open_after_the_timeout() {
    let server = RedisServer::start().await;
    let mut config = RedisConfig::new(server.url(), "p:");
    config.timeout = Duration::from_millis(200);
    let limiter = RedisRateLimiter::new(RedisConnection::open(&config).unwrap());
    let one = per_minute(RateLimitAlgorithm::SlidingWindow, 1);
    assert!(allowed(&limiter, "k", &one).await);
    assert!(!allowed(&limiter, "k", &one).await);

    signal(server.pid(), "-STOP");
    let d = limiter.check("k", &one, Utc::now()).await;
    signal(server.pid(), "-CONT");
    assert!(d.unwrap().allowed, "a hung Redis fails open");
    assert_eq!(limiter.fail_open_total(), 1);
    until_redis_counts(&limiter).await;
    assert!(
        !allowed(&limiter, "k", &one).await,
        "what was counted before is still there"
    );
}

/// Sends a signal to the test's own redis-server.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}
