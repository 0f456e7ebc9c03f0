//! Rate limiting of API requests: rules per endpoint group, buckets per signed-in user (or per
//! client address when anonymous), per-user overrides read from the store (briefly cached), and
//! the `X-RateLimit-*` headers. Counting is delegated to a [`RateLimiter`] port.

mod layer;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// The rate-limit service shared by the middleware and the admin routes. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    defaults: Arc<Vec<CompiledRule>>,
    /// Profiles by username (the session token carries the username).
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl RateLimits {
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            limiter,
            defaults: Arc::new(rules::compile_all(&RateLimitRule::defaults())),
            cache: Arc::default(),
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

    /// The profile of `username` (None for an unknown or inactive user).
    pub async fn profile(
        &self,
        store: &dyn Store,
        username: &str,
    ) -> Result<Option<Arc<Profile>>, StoreError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache
                .get(username)
                .filter(|c| c.loaded.elapsed() < CACHE_TTL)
            {
                return Ok(hit.profile.clone());
            }
        }
        let profile = match store.user_by_username(username).await? {
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
                username.to_owned(),
                Cached {
                    loaded: Instant::now(),
                    profile: profile.clone(),
                },
            );
        }
        Ok(profile)
    }

    fn default_rules(&self) -> &[CompiledRule] {
        &self.defaults
    }
}
