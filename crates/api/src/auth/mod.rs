//! Authentication: session tokens in cookies, the current-user extractors, CSRF and lockout.

pub mod csrf;
pub mod jwt;
pub mod password;
pub mod session;

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use integr8s_core::user::User;

use crate::error::ApiError;
use crate::state::AppState;

/// The httpOnly cookie holding the session JWT.
pub const ACCESS_COOKIE: &str = "access_token";
/// The script-readable cookie holding the CSRF token.
pub const CSRF_COOKIE: &str = "csrf_token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value; `max_age` zero deletes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Duration,
    http_only: bool,
    secure: bool,
) -> HeaderValue {
    let mut s = format!(
        "{name}={value}; Max-Age={}; Path=/; SameSite=Strict",
        max_age.as_secs()
    );
    if max_age.is_zero() {
        s.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if http_only {
        s.push_str("; HttpOnly");
    }
    if secure {
        s.push_str("; Secure");
    }
    // Names are constants and values are base64url/hex; this cannot contain invalid bytes.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The authenticated, active user of the request (401 otherwise).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            cookie(&parts.headers, ACCESS_COOKIE).ok_or_else(ApiError::not_authenticated)?;
        session::authenticate(state, &token).await.map(CurrentUser)
    }
}

/// An authenticated admin (403 `AdminAccessRequiredError` for other users).
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(AdminUser(user))
        } else {
            Err(ApiError::admin_required(&user.username))
        }
    }
}

/// Login lockout kept in the key/value port.
pub mod lockout {
    use super::*;

    fn attempts_key(username: &str) -> String {
        format!("login_lockout:attempts:{username}")
    }

    fn locked_key(username: &str) -> String {
        format!("login_lockout:locked:{username}")
    }

    pub fn locked_error() -> ApiError {
        ApiError::domain(
            axum::http::StatusCode::LOCKED,
            "AccountLockedError",
            "Account temporarily locked due to too many failed attempts",
        )
    }

    pub async fn is_locked(state: &AppState, username: &str) -> Result<bool, ApiError> {
        Ok(state.kv.get(&locked_key(username)).await?.is_some())
    }

    /// Counts a failed attempt; returns whether the account is now locked. The attempt limit
    /// and the lockout duration are the effective system settings.
    pub async fn record_failure(state: &AppState, username: &str) -> Result<bool, ApiError> {
        let settings = crate::routes::admin::settings::effective_settings(state).await?;
        let window = Duration::from_secs(settings.lockout_duration_minutes.saturating_mul(60));
        let count = state.kv.incr(&attempts_key(username), window).await?;
        if count >= u64::from(settings.max_login_attempts) {
            state.kv.set(&locked_key(username), "1", window).await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub async fn clear(state: &AppState, username: &str) -> Result<(), ApiError> {
        state.kv.delete(&attempts_key(username)).await?;
        state.kv.delete(&locked_key(username)).await?;
        Ok(())
    }
}
