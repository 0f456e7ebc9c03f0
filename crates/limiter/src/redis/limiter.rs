//! [`RedisRateLimiter`]: each check is one Lua script (`bucket.lua`) run atomically by Redis,
//! sent by hash and loaded again when Redis lost it. A check that Redis does not answer fails
//! open: the request is allowed and counted in [`RedisRateLimiter::fail_open_total`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::ratelimit::{
    BucketUsage, LimitSpec, RateLimitAlgorithm, RateLimitDecision, RateLimiter,
};
use integr8s_core::StoreError;

use super::connection::{glob_literal, scan, CallError, RedisConnection};
use super::fail_open::FailOpen;
use crate::ratelimit::{capacity, decision, limit_of, window_ms, Step};

const BUCKET_SCRIPT: &str = include_str!("bucket.lua");
/// Buckets deleted per command by `reset`.
const DELETE_BATCH: usize = 500;

/// `RateLimiter` in Redis, shared by every process that uses the same Redis and key prefix.
pub struct RedisRateLimiter {
    conn: RedisConnection,
    script: ::redis::Script,
    fail_open: FailOpen,
}

impl RedisRateLimiter {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            script: ::redis::Script::new(BUCKET_SCRIPT),
            fail_open: FailOpen::new(),
        }
    }

    /// Checks let through because Redis did not answer, since this limiter was made.
    pub fn fail_open_total(&self) -> u64 {
        self.fail_open.total()
    }

    fn state_key(&self, bucket: &str) -> String {
        self.conn.key(&format!("rl:b:{bucket}"))
    }

    fn hits_key(&self, bucket: &str) -> String {
        self.conn.key(&format!("rl:h:{bucket}"))
    }

    async fn counted(
        &self,
        key: &str,
        spec: &LimitSpec,
        now_ms: i64,
    ) -> Result<RateLimitDecision, CallError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.state_key(key))
            .key(self.hits_key(key))
            .arg("check")
            .arg(now_ms)
            .arg(spec.algorithm.as_str())
            .arg(spec.requests.max(1))
            .arg(window_ms(spec))
            .arg(capacity(spec) as u64);
        let invocation = &invocation;
        let (allowed, limit, remaining, reset_at_ms, retry_after_ms): (i64, u32, u32, i64, i64) =
            self.conn
                .call(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await?;
        Ok(decision(Step {
            allowed: allowed == 1,
            limit,
            remaining,
            reset_at_ms,
            retry_after_ms,
        }))
    }
}

/// The answer when Redis does not: allowed, nothing counted.
fn open_decision(spec: &LimitSpec, now: DateTime<Utc>) -> RateLimitDecision {
    let limit = limit_of(spec);
    RateLimitDecision {
        allowed: true,
        limit,
        remaining: limit,
        reset_at: now,
        retry_after_secs: 0,
    }
}

fn algorithm(name: &str) -> Result<RateLimitAlgorithm, StoreError> {
    use RateLimitAlgorithm as A;
    [
        A::SlidingWindow,
        A::TokenBucket,
        A::FixedWindow,
        A::LeakyBucket,
    ]
    .into_iter()
    .find(|a| a.as_str() == name)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown rate limit algorithm {name:?} in Redis")))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        key: &str,
        spec: &LimitSpec,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision, StoreError> {
        match self.counted(key, spec, now.timestamp_millis()).await {
            Ok(decision) => {
                self.fail_open.answered();
                Ok(decision)
            }
            Err(e) => {
                self.fail_open.record(&e);
                Ok(open_decision(spec, now))
            }
        }
    }

    async fn usage(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BucketUsage>, StoreError> {
        let state_prefix = self.state_key("");
        let pattern = format!("{}*", glob_literal(&self.state_key(prefix)));
        let keys = scan(&self.conn, pattern).await?;
        let mut usage = Vec::with_capacity(keys.len());
        for state in keys {
            let Some(bucket) = state.strip_prefix(&state_prefix) else {
                continue;
            };
            let mut invocation = self.script.prepare_invoke();
            invocation
                .key(&state)
                .key(self.hits_key(bucket))
                .arg("peek")
                .arg(now.timestamp_millis());
            let invocation = &invocation;
            let peeked: Option<(String, u32)> = self
                .conn
                .call(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await?;
            // A bucket that expired since the scan is not live any more.
            if let Some((name, remaining)) = peeked {
                usage.push(BucketUsage {
                    key: bucket.to_owned(),
                    algorithm: algorithm(&name)?,
                    remaining,
                });
            }
        }
        usage.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(usage)
    }

    async fn reset(&self, prefix: &str) -> Result<u64, StoreError> {
        let state_prefix = self.state_key("");
        let pattern = format!("{}*", glob_literal(&self.state_key(prefix)));
        let keys = scan(&self.conn, pattern).await?;
        let mut forgotten = 0;
        for batch in keys.chunks(DELETE_BATCH) {
            let hits: Vec<String> = batch
                .iter()
                .filter_map(|k| k.strip_prefix(&state_prefix))
                .map(|bucket| self.hits_key(bucket))
                .collect();
            let (states, hits) = (batch, &hits);
            let deleted: u64 = self
                .conn
                .call(|mut c| async move {
                    let (deleted, _): (u64, u64) = ::redis::pipe()
                        .del(states)
                        .del(hits)
                        .query_async(&mut c)
                        .await?;
                    Ok(deleted)
                })
                .await?;
            forgotten += deleted;
        }
        Ok(forgotten)
    }
}
