//! The limiter adapters named by `limiter.redis_url`: in this process's memory, or a Redis
//! shared by every process (rate limits, login lockouts and other short-lived keys).

use std::sync::Arc;

use anyhow::Context;
use integr8s_core::ports::{KeyValue, RateLimiter};
use integr8s_limiter::redis::redact_url;
use integr8s_limiter::{
    MemoryKeyValue, MemoryRateLimiter, RedisConfig, RedisConnection, RedisKeyValue,
    RedisRateLimiter,
};

use crate::config::Config;

pub struct Limiters {
    pub rate: Arc<dyn RateLimiter>,
    pub kv: Arc<dyn KeyValue>,
    /// The shared Redis, for readiness checks; `None` in memory.
    pub redis: Option<RedisConnection>,
}

/// Builds the adapters. An unreachable Redis does not stop the start: rate limiting fails open
/// (with a warning) until Redis answers.
pub async fn build(config: &Config) -> anyhow::Result<Limiters> {
    let section = &config.limiter;
    if section.redis_url.is_empty() {
        tracing::info!("rate limits and short-lived keys in memory (limiter.redis_url is empty)");
        return Ok(Limiters {
            rate: Arc::new(MemoryRateLimiter::new()),
            kv: Arc::new(MemoryKeyValue::new()),
            redis: None,
        });
    }
    let redis = RedisConfig::new(&section.redis_url, &section.key_prefix);
    let conn = RedisConnection::open(&redis).context("limiter.redis_url")?;
    let target = redact_url(&section.redis_url);
    match conn.ping().await {
        Ok(()) => tracing::info!(
            redis = %target,
            key_prefix = %section.key_prefix,
            "rate limits and short-lived keys in Redis"
        ),
        Err(e) => tracing::warn!(
            redis = %target,
            error = %e,
            "Redis (limiter.redis_url) does not answer: requests are not rate limited until it does"
        ),
    }
    Ok(Limiters {
        rate: Arc::new(RedisRateLimiter::new(conn.clone())),
        kv: Arc::new(RedisKeyValue::new(conn.clone())),
        redis: Some(conn),
    })
}
