//! In-memory short-lived keys (`KeyValue`): counters and values with a time to live, for one
//! process. Expired keys are purged lazily, on access and now and then on writes.
//! Also the in-memory request counters ([`MemoryRateLimiter`]).

mod ratelimit;

pub use ratelimit::MemoryRateLimiter;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use integr8s_core::ports::KeyValue;
use integr8s_core::StoreError;

/// Writes between two sweeps of expired keys.
const SWEEP_EVERY: u64 = 1024;

struct Entry {
    value: String,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Writes since the last sweep.
    writes: u64,
}

impl State {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| e.expires_at <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn note_write(&mut self, now: Instant) {
        self.writes += 1;
        if self.writes >= SWEEP_EVERY {
            self.writes = 0;
            self.entries.retain(|_, e| e.expires_at > now);
        }
    }
}

/// `KeyValue` in a mutex-guarded map. Values live until their TTL passes; `incr` keeps the TTL
/// set when the counter was created.
#[derive(Default)]
pub struct MemoryKeyValue {
    state: Mutex<State>,
}

impl MemoryKeyValue {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError::Unavailable("key/value state poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[async_trait]
impl KeyValue for MemoryKeyValue {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let now = Instant::now();
        self.with_state(|state| {
            state.note_write(now);
            let next = match state.live(key, now) {
                Some(entry) => {
                    let next = entry.value.parse::<u64>().map_err(|_| {
                        StoreError::Conflict(format!("key {key:?} does not hold a counter"))
                    })? + 1;
                    entry.value = next.to_string();
                    next
                }
                None => {
                    state.entries.insert(
                        key.to_owned(),
                        Entry {
                            value: "1".to_owned(),
                            expires_at: deadline(now, ttl),
                        },
                    );
                    1
                }
            };
            Ok(next)
        })?
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        self.with_state(|state| state.live(key, now).map(|e| e.value.clone()))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        self.with_state(|state| {
            state.note_write(now);
            state.entries.insert(
                key.to_owned(),
                Entry {
                    value: value.to_owned(),
                    expires_at: deadline(now, ttl),
                },
            );
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.with_state(|state| {
            state.entries.remove(key);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn incr_counts_from_one_and_keeps_the_first_ttl() {
        let kv = MemoryKeyValue::new();
        assert_eq!(kv.incr("login:alice", LONG).await.unwrap(), 1);
        assert_eq!(kv.incr("login:alice", Duration::ZERO).await.unwrap(), 2);
        assert_eq!(kv.incr("login:bob", LONG).await.unwrap(), 1);
        assert_eq!(kv.get("login:alice").await.unwrap().as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn set_get_and_delete() {
        let kv = MemoryKeyValue::new();
        assert_eq!(kv.get("k").await.unwrap(), None);
        kv.set("k", "v1", LONG).await.unwrap();
        kv.set("k", "v2", LONG).await.unwrap();
        assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("v2"));
        kv.delete("k").await.unwrap();
        kv.delete("k").await.unwrap();
        assert_eq!(kv.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_keys_vanish_and_counters_restart() {
        let kv = MemoryKeyValue::new();
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

    #[tokio::test]
    async fn incr_on_a_non_counter_is_a_conflict() {
        let kv = MemoryKeyValue::new();
        kv.set("k", "text", LONG).await.unwrap();
        assert!(matches!(
            kv.incr("k", LONG).await,
            Err(StoreError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn sweeps_drop_expired_keys_from_memory() {
        let kv = MemoryKeyValue::new();
        for i in 0..SWEEP_EVERY {
            kv.set(&format!("k{i}"), "x", Duration::ZERO).await.unwrap();
        }
        let left = kv.with_state(|s| s.entries.len()).unwrap();
        assert!(left < 2, "expired keys were kept: {left}");
    }

    #[tokio::test]
    async fn huge_ttl_does_not_overflow() {
        let kv = MemoryKeyValue::new();
        kv.set("k", "v", Duration::MAX).await.unwrap();
        assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("v"));
    }
}
