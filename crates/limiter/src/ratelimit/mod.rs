//! In-memory [`RateLimiter`]: one bucket per key in a mutex-guarded map, for one process.
//! Buckets that are back to their full allowance are dropped now and then.

mod algorithms;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use integr8s_core::ports::ratelimit::{
    BucketUsage, LimitSpec, RateLimitAlgorithm, RateLimitDecision, RateLimiter,
};
use integr8s_core::StoreError;

use algorithms::Bucket;
pub(crate) use algorithms::{capacity, window_ms, Step};

/// Checks between two sweeps of idle buckets.
const SWEEP_EVERY: u64 = 4096;

struct Entry {
    spec: LimitSpec,
    bucket: Bucket,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, Entry>,
    checks: u64,
}

/// `RateLimiter` in process memory.
#[derive(Default)]
pub struct MemoryRateLimiter {
    state: Mutex<State>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError::Unavailable("rate limiter state poisoned".into()))?;
        Ok(f(&mut guard))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.with_state(|s| s.buckets.len()).unwrap_or_default()
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The limit announced for `spec`: the token capacity for token and leaky buckets, the
/// requests per window otherwise.
pub(crate) fn limit_of(spec: &LimitSpec) -> u32 {
    match spec.algorithm {
        RateLimitAlgorithm::TokenBucket | RateLimitAlgorithm::LeakyBucket => capacity(spec) as u32,
        RateLimitAlgorithm::SlidingWindow | RateLimitAlgorithm::FixedWindow => spec.requests.max(1),
    }
}

/// The port's decision for one step of an algorithm.
pub(crate) fn decision(step: Step) -> RateLimitDecision {
    RateLimitDecision {
        allowed: step.allowed,
        limit: step.limit,
        remaining: step.remaining,
        reset_at: at(step.reset_at_ms),
        retry_after_secs: if step.allowed {
            0
        } else {
            u64::try_from((step.retry_after_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1)
        },
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(
        &self,
        key: &str,
        spec: &LimitSpec,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision, StoreError> {
        let now = now.timestamp_millis();
        self.with_state(|state| {
            state.checks += 1;
            if state.checks >= SWEEP_EVERY {
                state.checks = 0;
                state
                    .buckets
                    .retain(|_, e| e.bucket.idle_after(&e.spec) > now);
            }
            let entry = state
                .buckets
                .entry(key.to_owned())
                .or_insert_with(|| Entry {
                    spec: *spec,
                    bucket: Bucket::new(spec, now),
                });
            if !entry.bucket.fits(spec.algorithm) {
                entry.bucket = Bucket::new(spec, now);
            }
            entry.spec = *spec;
            decision(entry.bucket.check(spec, now))
        })
    }

    async fn usage(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BucketUsage>, StoreError> {
        let now = now.timestamp_millis();
        self.with_state(|state| {
            let mut usage: Vec<BucketUsage> = state
                .buckets
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, e)| BucketUsage {
                    key: key.clone(),
                    algorithm: e.spec.algorithm,
                    remaining: e.bucket.remaining(&e.spec, now),
                })
                .collect();
            usage.sort_by(|a, b| a.key.cmp(&b.key));
            usage
        })
    }

    async fn reset(&self, prefix: &str) -> Result<u64, StoreError> {
        self.with_state(|state| {
            let before = state.buckets.len();
            state.buckets.retain(|key, _| !key.starts_with(prefix));
            (before - state.buckets.len()) as u64
        })
    }
}
