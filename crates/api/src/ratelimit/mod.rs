//! Rate limiting of API requests: rules per endpoint group, buckets per signed-in user (or per
//! client address when anonymous), per-user overrides read from the store (briefly cached), and
//! the `X-RateLimit-*` headers. Counting is delegated to a [`RateLimiter`] port.
//!
//! Event streams (rules of group `sse`) are limited by how many are open at once, not per
//! window: a stream holds a [`StreamSlot`] until its response ends. Open streams are counted in
//! this process (a stream lives on one process's connection).

mod layer;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use integr8s_core::ports::ratelimit::{RateLimitRule, RateLimiter, UserRateLimit};
use integr8s_core::ports::Store;
use integr8s_core::StoreError;

pub use layer::rate_limit;
use rules::CompiledRule;

/// How long a user's override is reused before it is read again.
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries past which the cache is emptied (it refills on demand).
const CACHE_MAX: usize = 10_000;
/// Paths never limited.
const EXCLUDED: [&str; 8] = [
    "/health",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/favicon.ico",
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/logout",
];

/// Whether requests to `path` are never limited.
pub fn is_excluded(path: &str) -> bool {
    EXCLUDED.contains(&path) || path.starts_with("/docs/")
}

/// A signed-in user's identity and override, as cached.
#[derive(Debug, Clone)]
pub struct Profile {
    pub user_id: String,
    pub config: Option<UserRateLimit>,
    pub rules: Vec<CompiledRule>,
}

struct Cached {
    loaded: Instant,
    profile: Option<Arc<Profile>>,
}

/// Open event streams per bucket key.
type OpenStreams = Arc<Mutex<HashMap<String, u32>>>;

/// One open event stream of a bucket; dropping it (when the response ends) frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    open: OpenStreams,
    key: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The rate-limit service shared by the middleware and the admin routes. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    defaults: Arc<Vec<CompiledRule>>,
    /// Profiles by user id (the session token carries the user id).
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    streams: OpenStreams,
}

impl RateLimits {
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            limiter,
            defaults: Arc::new(rules::compile_all(&RateLimitRule::defaults())),
            cache: Arc::default(),
            streams: Arc::default(),
        }
    }

    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.limiter
    }

    pub fn defaults(&self) -> impl Iterator<Item = &RateLimitRule> {
        self.defaults.iter().map(|c| &c.rule)
    }

    /// Prefix of every bucket of the signed-in user `user_id`.
    pub fn user_prefix(user_id: &str) -> String {
        format!("user:{user_id}:")
    }

    /// Prefix of every bucket of the anonymous client `ip`.
    pub fn ip_prefix(ip: &str) -> String {
        format!("ip:{ip}:")
    }

    /// Forgets cached overrides so a change applies to the next request.
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// The profile of `user_id` (None for an unknown or inactive user).
    pub async fn profile(
        &self,
        store: &dyn Store,
        user_id: &str,
    ) -> Result<Option<Arc<Profile>>, StoreError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache
                .get(user_id)
                .filter(|c| c.loaded.elapsed() < CACHE_TTL)
            {
                return Ok(hit.profile.clone());
            }
        }
        let profile = match store.user_by_id(user_id).await? {
            Some(user) if user.is_active => {
                let config = store.get_user_rate_limit(&user.user_id).await?;
                let rules = config
                    .as_ref()
                    .map(|c| rules::compile_all(&c.rules))
                    .unwrap_or_default();
                Some(Arc::new(Profile {
                    user_id: user.user_id,
                    config,
                    rules,
                }))
            }
            _ => None,
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                user_id.to_owned(),
                Cached {
                    loaded: Instant::now(),
                    profile: profile.clone(),
                },
            );
        }
        Ok(profile)
    }

    /// Opens one of at most `max` streams of bucket `key`: the slot and how many are open with
    /// it, or `Err` with how many are open when none is free.
    pub fn open_stream(&self, key: &str, max: u32) -> Result<(StreamSlot, u32), u32> {
        let mut open = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.to_owned()).or_insert(0);
        if *count >= max {
            return Err(*count);
        }
        *count += 1;
        let now_open = *count;
        Ok((
            StreamSlot {
                open: self.streams.clone(),
                key: key.to_owned(),
            },
            now_open,
        ))
    }

    fn default_rules(&self) -> &[CompiledRule] {
        &self.defaults
    }
}
