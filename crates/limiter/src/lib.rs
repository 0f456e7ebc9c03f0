//! Adapters of the limiter and short-lived key ports (`RateLimiter`, `KeyValue`).
//!
//! In memory, for one process: [`MemoryKeyValue`] (counters and values with a time to live;
//! expired keys are purged lazily, on access and now and then on writes) and
//! [`MemoryRateLimiter`]. In Redis, shared by several processes: the [`redis`] module.

mod ratelimit;
pub mod redis;
#[cfg(feature = "testing")]
pub mod testing;

pub use self::redis::{RedisConfig, RedisConnection, RedisKeyValue, RedisRateLimiter};
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
    //! What only the in-memory store does: dropping expired keys. The port's behaviour is
    //! checked by the conformance suite (`integr8s_core::key_value_test_suite!`, in `tests/`).
    use super::*;

    #[tokio::test]
    async fn sweeps_drop_expired_keys_from_memory() {
        let kv = MemoryKeyValue::new();
        for i in 0..SWEEP_EVERY {
            kv.set(&format!("k{i}"), "x", Duration::ZERO).await.unwrap();
        }
        let left = kv.with_state(|s| s.entries.len()).unwrap();
        assert!(left < 2, "expired keys were kept: {left}");
    }
}
