//! Key/value conformance suite: counters that keep the TTL set at their creation, values with a
//! time to live that really passes, and atomic increments under concurrency. Run with
//! [`key_value_test_suite!`](crate::key_value_test_suite).
//!
//! Waiting for an expiry only has a generous deadline, never a time limit.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::KeyValue;
use crate::StoreError;

/// Generates one `#[tokio::test]` per key/value case. `$make` is an expression (re-evaluated
/// per test) giving a future of `Fixture<dyn KeyValue>` over an empty store.
#[macro_export]
macro_rules! key_value_test_suite {
    ($make:expr) => {
        $crate::key_value_test_suite!(@cases $make;
            incr_counts_from_one_and_keeps_the_first_ttl,
            set_get_and_delete,
            expired_keys_vanish_and_counters_restart,
            incr_on_a_non_counter_is_a_conflict,
            huge_ttl_does_not_overflow,
            keys_expire_when_their_ttl_passes,
            set_replaces_the_ttl,
            concurrent_increments_are_each_counted_once,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testsuite::store::Fixture<dyn $crate::ports::KeyValue> =
                    $make.await;
                $crate::testsuite::kv::$case(fixture.store.clone()).await;
            }
        )+
    };
}

type Kv = Arc<dyn KeyValue>;

const LONG: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(200);
/// Generous bound for an expiry to be seen; never a performance threshold.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until `key` is gone; panics after the deadline.
async fn until_gone(kv: &Kv, key: &str) {
    let waited = tokio::time::timeout(DEADLINE, async {
        while kv.get(key).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{key} did not expire within {DEADLINE:?}");
}

pub async fn incr_counts_from_one_and_keeps_the_first_ttl(kv: Kv) {
    assert_eq!(kv.incr("login:alice", LONG).await.unwrap(), 1);
    assert_eq!(kv.incr("login:alice", Duration::ZERO).await.unwrap(), 2);
    assert_eq!(kv.incr("login:bob", LONG).await.unwrap(), 1);
    assert_eq!(kv.get("login:alice").await.unwrap().as_deref(), Some("2"));
}

pub async fn set_get_and_delete(kv: Kv) {
    assert_eq!(kv.get("k").await.unwrap(), None);
    kv.set("k", "v1", LONG).await.unwrap();
    kv.set("k", "v2", LONG).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("v2"));
    kv.delete("k").await.unwrap();
    kv.delete("k").await.unwrap();
    assert_eq!(kv.get("k").await.unwrap(), None);
}

pub async fn expired_keys_vanish_and_counters_restart(kv: Kv) {
    kv.set("gone", "x", Duration::ZERO).await.unwrap();
    assert_eq!(kv.get("gone").await.unwrap(), None);
    assert_eq!(kv.incr("c", Duration::ZERO).await.unwrap(), 1);
    assert_eq!(
        kv.incr("c", LONG).await.unwrap(),
        1,
        "the expired counter restarts"
    );
    assert_eq!(kv.incr("c", LONG).await.unwrap(), 2);
}

pub async fn incr_on_a_non_counter_is_a_conflict(kv: Kv) {
    kv.set("k", "text", LONG).await.unwrap();
    assert!(matches!(
        kv.incr("k", LONG).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        kv.get("k").await.unwrap().as_deref(),
        Some("text"),
        "a refused increment changes nothing"
    );
}

pub async fn huge_ttl_does_not_overflow(kv: Kv) {
    kv.set("k", "v", Duration::MAX).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(kv.incr("c", Duration::MAX).await.unwrap(), 1);
    assert_eq!(kv.incr("c", Duration::MAX).await.unwrap(), 2);
}

pub async fn keys_expire_when_their_ttl_passes(kv: Kv) {
    kv.set("value", "v", SHORT).await.unwrap();
    assert_eq!(kv.incr("counter", SHORT).await.unwrap(), 1);
    // A later increment with a long TTL must not extend the counter's life.
    assert_eq!(kv.incr("counter", LONG).await.unwrap(), 2);
    kv.set("kept", "v", LONG).await.unwrap();
    until_gone(&kv, "value").await;
    until_gone(&kv, "counter").await;
    assert_eq!(
        kv.incr("counter", LONG).await.unwrap(),
        1,
        "counts again from 1"
    );
    assert_eq!(kv.get("kept").await.unwrap().as_deref(), Some("v"));
}

pub async fn set_replaces_the_ttl(kv: Kv) {
    kv.set("k", "short", Duration::from_millis(100))
        .await
        .unwrap();
    kv.set("k", "long", LONG).await.unwrap();
    kv.set("probe", "x", Duration::from_millis(100))
        .await
        .unwrap();
    // Once a key set with the same short TTL later is gone, the first TTL has passed too.
    until_gone(&kv, "probe").await;
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("long"));
}

pub async fn concurrent_increments_are_each_counted_once(kv: Kv) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.incr("race", LONG).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<u64>>());
    assert_eq!(kv.get("race").await.unwrap().as_deref(), Some("50"));
}
