//! Guards of the unauthenticated endpoints (`/auth/login`, `/auth/register`):
//! - bounded lengths of usernames, e-mails and passwords (the contract's 422);
//! - per-client-address and per-account throttles counted by the [`RateLimiter`] port, so they
//!   hold across processes with the Redis adapter (the contract's 429 shape, `Retry-After`);
//! - a bounded number of password hashes at once: an excess request waits briefly for a place,
//!   then gets 503 in the contract's error shape;
//! - a per-account delay that grows with recent failures, so guessing slows down without any
//!   stranger being able to lock the owner out (lockout itself is per account and address).
//!
//! [`RateLimiter`]: integr8s_core::ports::ratelimit::RateLimiter

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use integr8s_core::ports::ratelimit::{LimitSpec, RateLimitAlgorithm};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ValidationIssue};
use crate::state::AppState;

/// Longest accepted username, in characters.
pub const USERNAME_MAX: usize = 64;
/// Longest accepted e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest accepted password, in characters.
pub const PASSWORD_MAX: usize = 128;
/// Characters of a username kept in an audit record.
pub const AUDIT_USERNAME_MAX: usize = USERNAME_MAX;
/// Longest per-account delay before a password is checked.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Added to the per-account delay by each recent failure.
const DELAY_STEP: Duration = Duration::from_millis(100);

/// Limits of the unauthenticated endpoints (`auth.*` settings); a zero rate turns that throttle
/// off.
#[derive(Debug, Clone)]
pub struct AuthLimits {
    pub login_per_ip_per_minute: u32,
    pub login_per_account_per_minute: u32,
    pub register_per_ip_per_hour: u32,
    /// How long a request waits for a hashing place before it is refused.
    pub hash_wait: Duration,
    hashes: Arc<Semaphore>,
    /// The bound of `hashes`: more hashing threads than this would only keep memory.
    max_hashes: usize,
}

impl AuthLimits {
    pub fn new(
        login_per_ip_per_minute: u32,
        login_per_account_per_minute: u32,
        register_per_ip_per_hour: u32,
        max_concurrent_hashes: usize,
        hash_wait: Duration,
    ) -> Self {
        Self {
            login_per_ip_per_minute,
            login_per_account_per_minute,
            register_per_ip_per_hour,
            hash_wait,
            hashes: Arc::new(Semaphore::new(max_concurrent_hashes.max(1))),
            max_hashes: max_concurrent_hashes.max(1),
        }
    }
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self::new(30, 10, 20, 4, Duration::from_secs(2))
    }
}

/// A `string_too_long` issue at `body.<field>` when `value` exceeds `max` characters.
pub fn too_long(field: &str, value: &str, max: usize) -> Option<ValidationIssue> {
    (value.chars().count() > max).then(|| {
        ValidationIssue::new(
            &["body", field],
            "string_too_long",
            format!("String should have at most {max} characters"),
        )
    })
}

/// The username as an audit record keeps it: at most [`AUDIT_USERNAME_MAX`] characters.
pub fn audit_username(username: &str) -> String {
    username.chars().take(AUDIT_USERNAME_MAX).collect()
}

/// A request refused by a throttle: 429 with `Retry-After`.
fn throttled(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        kind: "RateLimitExceededError",
        detail: "Too many attempts, try again later".to_owned(),
        retry_after_secs,
    }
}

/// Counts one request against bucket `key`: `requests` per `window`; refused requests get 429.
async fn count(
    state: &AppState,
    key: &str,
    requests: u32,
    window: Duration,
) -> Result<(), ApiError> {
    if requests == 0 {
        return Ok(());
    }
    let spec = LimitSpec {
        algorithm: RateLimitAlgorithm::SlidingWindow,
        requests,
        window,
        burst_multiplier: 1.0,
    };
    let limiter = state.rate_limits.limiter();
    let decision = limiter.check(key, &spec, integr8s_core::now()).await?;
    if decision.allowed {
        Ok(())
    } else {
        tracing::info!(bucket = %key, "unauthenticated request throttled");
        Err(throttled(decision.retry_after_secs))
    }
}

fn ip_label(ip: Option<std::net::IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The account part of a bucket or lockout key: case-folded, bounded.
pub fn account_label(username: &str) -> String {
    audit_username(username).to_lowercase()
}

/// Throttles a login attempt per client address and per account.
pub async fn throttle_login(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    username: &str,
) -> Result<(), ApiError> {
    let limits = &state.config.auth_limits;
    let minute = Duration::from_secs(60);
    let ip_key = format!("auth:login:ip:{}", ip_label(ip));
    count(state, &ip_key, limits.login_per_ip_per_minute, minute).await?;
    let account_key = format!("auth:login:account:{}", account_label(username));
    count(
        state,
        &account_key,
        limits.login_per_account_per_minute,
        minute,
    )
    .await
}

/// Throttles a registration per client address.
pub async fn throttle_register(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
) -> Result<(), ApiError> {
    let limits = &state.config.auth_limits;
    let key = format!("auth:register:ip:{}", ip_label(ip));
    count(
        state,
        &key,
        limits.register_per_ip_per_hour,
        Duration::from_secs(3600),
    )
    .await
}

/// A place among the password hashes allowed at once; waits up to `hash_wait` for one, then
/// refuses with 503.
pub async fn hash_permit(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    let limits = &state.config.auth_limits;
    let acquire = limits.hashes.clone().acquire_owned();
    match tokio::time::timeout(limits.hash_wait, acquire).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            tracing::warn!("password hashing at capacity; request refused");
            Err(ApiError::domain(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableError",
                "Too many sign-ins at once, try again shortly",
            ))
        }
    }
}

/// Hashes a password within the bound of hashes at once.
pub async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    let _permit = hash_permit(state).await?;
    super::password::hash_blocking(password, state.config.auth_limits.max_hashes).await
}

/// Verifies a password (against the dummy hash when there is no user) within the bound.
pub async fn verify_password(
    state: &AppState,
    password: String,
    phc: Option<String>,
) -> Result<bool, ApiError> {
    let _permit = hash_permit(state).await?;
    super::password::verify_blocking(password, phc, state.config.auth_limits.max_hashes).await
}

/// The per-account delay for `recent_failures` failed attempts.
pub fn delay_for(recent_failures: u64) -> Duration {
    let steps = u32::try_from(recent_failures).unwrap_or(u32::MAX);
    DELAY_STEP.saturating_mul(steps).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_delays() {
        assert!(too_long("username", &"a".repeat(USERNAME_MAX), USERNAME_MAX).is_none());
        let issue = too_long("username", &"é".repeat(USERNAME_MAX + 1), USERNAME_MAX);
        assert_eq!(issue.map(|i| i.kind), Some("string_too_long".to_owned()));
        assert_eq!(
            audit_username(&"x".repeat(10_000)).len(),
            AUDIT_USERNAME_MAX
        );
        assert_eq!(delay_for(0), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_millis(300));
        assert_eq!(delay_for(u64::MAX), MAX_DELAY);
    }
}
