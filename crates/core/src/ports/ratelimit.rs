//! Rate limiting: per-user overrides kept by the store ([`RateLimitStore`]) and the counters kept
//! by a limiter ([`RateLimiter`]: in memory for one process, or in Redis shared by several).
//! Conformance suite of the limiter: `rate_limiter_test_suite!`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// How requests are counted. `fixed_window` and `leaky_bucket` are accepted for compatibility:
/// a fixed window counts per aligned window, a leaky bucket is a token bucket without burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RateLimitAlgorithm {
    SlidingWindow,
    TokenBucket,
    FixedWindow,
    LeakyBucket,
}

impl RateLimitAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SlidingWindow => "sliding_window",
            Self::TokenBucket => "token_bucket",
            Self::FixedWindow => "fixed_window",
            Self::LeakyBucket => "leaky_bucket",
        }
    }
}

/// Requests per minute of `/auth/me` and of the read-only lookups each page of the web frontend
/// makes: five a second for a whole minute, more than a person clicking can cause.
pub const LOOKUP_REQUESTS_PER_MINUTE: u32 = 300;

/// Event streams one user (or anonymous address) may have open at once by default; a browser
/// opens at most six connections to one host.
pub const OPEN_STREAMS: u32 = 10;

/// The endpoint group a rule is meant for (matching is by pattern). Rules of group `sse` limit
/// concurrency: their `requests` is how many streams may be open at once (the window and the
/// algorithm do not apply); every other group counts requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndpointGroup {
    Execution,
    Admin,
    Sse,
    Websocket,
    Auth,
    Public,
    Api,
}

/// One rule: requests matching `endpoint_pattern` (a regular expression matched at the start of
/// the path) may be made `requests` times per `window_seconds`. Among matching rules the highest
/// `priority` applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitRule {
    pub endpoint_pattern: String,
    pub group: EndpointGroup,
    pub requests: u32,
    pub window_seconds: u32,
    pub algorithm: RateLimitAlgorithm,
    pub burst_multiplier: f64,
    pub priority: i32,
    pub enabled: bool,
}

impl RateLimitRule {
    fn new(pattern: &str, group: EndpointGroup, requests: u32, burst: f64, priority: i32) -> Self {
        Self {
            endpoint_pattern: pattern.to_owned(),
            group,
            requests,
            window_seconds: 60,
            algorithm: RateLimitAlgorithm::SlidingWindow,
            burst_multiplier: burst,
            priority,
            enabled: true,
        }
    }

    /// The system defaults, highest priority first. They are the original's, except that no
    /// person using the web frontend hits them: `/auth/me` and the lookups every page makes get
    /// [`LOOKUP_REQUESTS_PER_MINUTE`], and the long-lived event streams (group `sse`) are
    /// limited in how many are open at once (`requests` counts open streams there, see
    /// [`EndpointGroup::Sse`]) instead of sharing a per-minute budget with short requests.
    pub fn defaults() -> Vec<RateLimitRule> {
        use EndpointGroup as G;
        let lookups = LOOKUP_REQUESTS_PER_MINUTE;
        vec![
            Self::new("^/api/v1/execute", G::Execution, 10, 1.5, 10),
            Self::new("^/api/v1/auth/me", G::Auth, lookups, 1.5, 8),
            Self::new("^/api/v1/auth/.*", G::Auth, 20, 1.5, 7),
            Self::new("^/api/v1/admin/.*", G::Admin, 100, 2.0, 5),
            Self::new("^/api/v1/events/.*", G::Sse, OPEN_STREAMS, 1.0, 3),
            Self::new("^/api/v1/ws", G::Websocket, 5, 1.0, 3),
            Self::new(
                "^/api/v1/(k8s-limits|example-scripts)",
                G::Public,
                lookups,
                1.5,
                2,
            ),
            Self::new(
                "^/api/v1/(user/settings|notifications)",
                G::Api,
                lookups,
                1.5,
                2,
            ),
            Self::new("^/api/v1/.*", G::Api, 60, 1.5, 1),
        ]
    }
}

/// A user's override, stored durably (no expiry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRateLimit {
    pub user_id: String,
    /// The user is never limited.
    pub bypass_rate_limit: bool,
    /// Scales the `requests` of every rule applied to the user.
    pub global_multiplier: f64,
    /// Extra rules, considered together with the defaults (by priority).
    pub rules: Vec<RateLimitRule>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub notes: Option<String>,
}

#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// The override of `user_id`, if one was saved.
    async fn get_user_rate_limit(&self, user_id: &str)
        -> Result<Option<UserRateLimit>, StoreError>;

    /// Creates or replaces the override of `limit.user_id`. On replace the stored `created_at`
    /// is kept; the saved record is returned.
    async fn put_user_rate_limit(&self, limit: &UserRateLimit)
        -> Result<UserRateLimit, StoreError>;

    /// Removes the override; returns whether there was one.
    async fn delete_user_rate_limit(&self, user_id: &str) -> Result<bool, StoreError>;
}

/// The effective limit applied to one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSpec {
    pub algorithm: RateLimitAlgorithm,
    /// Requests per window, at least 1.
    pub requests: u32,
    pub window: Duration,
    /// Token bucket capacity is `requests × burst_multiplier`.
    pub burst_multiplier: f64,
}

/// The outcome of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    pub allowed: bool,
    /// The limit announced in `X-RateLimit-Limit`.
    pub limit: u32,
    /// Requests left after this one.
    pub remaining: u32,
    /// When the bucket is back to its full allowance.
    pub reset_at: DateTime<Utc>,
    /// When refused: seconds until a request would be allowed (at least 1).
    pub retry_after_secs: u64,
}

/// What a bucket has left, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUsage {
    pub key: String,
    pub algorithm: RateLimitAlgorithm,
    pub remaining: u32,
}

/// Request counters. `now` is passed in so algorithms are deterministic; adapters must be safe
/// for concurrent use and must not count refused requests.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request against bucket `key` under `spec`, unless the limit is reached.
    async fn check(
        &self,
        key: &str,
        spec: &LimitSpec,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision, StoreError>;

    /// The live buckets whose key starts with `prefix`.
    async fn usage(&self, prefix: &str, now: DateTime<Utc>)
        -> Result<Vec<BucketUsage>, StoreError>;

    /// Forgets every bucket whose key starts with `prefix`; returns how many.
    async fn reset(&self, prefix: &str) -> Result<u64, StoreError>;
}
