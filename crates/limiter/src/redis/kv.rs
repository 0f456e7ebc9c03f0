//! [`RedisKeyValue`]: short-lived keys (login lockout counters and the like) in Redis, each
//! with its time to live set when it is created.

use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::ports::KeyValue;
use integr8s_core::StoreError;

use super::connection::{CallError, RedisConnection};

/// Creates the counter with its TTL, or increments it keeping the TTL it has. A TTL of 0 ms
/// means already expired: the answer is 1 and nothing is kept.
const INCR_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  if tonumber(ARGV[1]) > 0 then
    redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
  end
  return 1
end
if not string.match(value, '^%d+$') then
  return redis.error_reply('NOTCOUNTER the key does not hold a counter')
end
return redis.call('INCR', KEYS[1])
";

/// The longest TTL given to Redis (longer ones are clamped, as in memory).
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// `KeyValue` in Redis, shared by every process that uses the same Redis and key prefix.
pub struct RedisKeyValue {
    conn: RedisConnection,
    incr: ::redis::Script,
}

impl RedisKeyValue {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            incr: ::redis::Script::new(INCR_SCRIPT),
        }
    }

    fn key(&self, key: &str) -> String {
        self.conn.key(&format!("kv:{key}"))
    }
}

/// `ttl` in whole milliseconds: 0 only for a zero TTL, rounded up otherwise, clamped.
fn ttl_ms(ttl: Duration) -> u64 {
    if ttl.is_zero() {
        return 0;
    }
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TTL_MS)
}

#[async_trait]
impl KeyValue for RedisKeyValue {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let mut invocation = self.incr.prepare_invoke();
        invocation.key(self.key(key)).arg(ttl_ms(ttl));
        let invocation = &invocation;
        let result = self
            .conn
            .call(|mut c| async move { invocation.invoke_async::<u64>(&mut c).await })
            .await;
        match result {
            Err(CallError::Redis(e)) if e.code() == Some("NOTCOUNTER") => Err(
                StoreError::Conflict(format!("key {key:?} does not hold a counter")),
            ),
            other => other.map_err(StoreError::from),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = &self.key(key);
        self.conn
            .call(|mut c| async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await
            .map_err(StoreError::from)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = &self.key(key);
        let ms = ttl_ms(ttl);
        self.conn
            .call(|mut c| async move {
                if ms == 0 {
                    // Expired on arrival: the same as absent.
                    ::redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await
                } else {
                    ::redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg(ms)
                        .query_async::<()>(&mut c)
                        .await
                }
            })
            .await
            .map_err(StoreError::from)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = &self.key(key);
        self.conn
            .call(
                |mut c| async move { ::redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await },
            )
            .await
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_are_clamped() {
        assert_eq!(ttl_ms(Duration::ZERO), 0);
        assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }
}
