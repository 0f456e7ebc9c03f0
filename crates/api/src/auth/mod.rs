//! Authentication: session tokens in cookies, the current-user extractors, CSRF and lockout.

pub mod csrf;
pub mod guard;
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

/// Login lockout kept in the key/value port, per account **and** client address: a stranger
/// who guesses wrong locks out only their own address, never the owner's. Each attempt takes
/// its place with one atomic increment before the password is checked, so parallel guesses
/// cannot slip past the limit. An admin's unlock starts a new lockout epoch of the account,
/// which releases every address at once.
pub mod lockout {
    use std::net::IpAddr;

    use super::*;

    /// Epoch counters outlive any lockout window.
    const EPOCH_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

    fn epoch_key(account: &str) -> String {
        format!("login_lockout:epoch:{account}")
    }

    fn failures_key(account: &str) -> String {
        format!("login_lockout:failures:{account}")
    }

    async fn attempts_key(
        state: &AppState,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, ApiError> {
        let epoch = state.kv.get(&epoch_key(account)).await?.unwrap_or_default();
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        Ok(format!("login_lockout:attempts:{account}:{epoch}:{ip}"))
    }

    pub fn locked_error() -> ApiError {
        ApiError::domain(
            axum::http::StatusCode::LOCKED,
            "AccountLockedError",
            "Account temporarily locked due to too many failed attempts",
        )
    }

    /// A login attempt that has taken its place.
    pub struct Attempt {
        /// The attempt's number within the window (1 for the first).
        pub number: u64,
        pub max: u64,
        /// Recent failures of the account from every address (for the delay).
        pub account_failures: u64,
    }

    impl Attempt {
        /// Whether the address was already locked out before this attempt.
        pub fn locked(&self) -> bool {
            self.number > self.max
        }

        /// Whether failing this attempt locks the address out.
        pub fn last(&self) -> bool {
            self.number >= self.max
        }
    }

    /// Counts the attempt before the password is checked (one atomic increment). The limit and
    /// the window are the effective system settings.
    pub async fn begin(
        state: &AppState,
        username: &str,
        ip: Option<IpAddr>,
    ) -> Result<Attempt, ApiError> {
        let settings = crate::routes::admin::settings::effective_settings(state).await?;
        let window = Duration::from_secs(settings.lockout_duration_minutes.saturating_mul(60));
        let account = super::guard::account_label(username);
        let key = attempts_key(state, &account, ip).await?;
        let number = state.kv.incr(&key, window).await?;
        let account_failures = state
            .kv
            .get(&failures_key(&account))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Attempt {
            number,
            max: u64::from(settings.max_login_attempts),
            account_failures,
        })
    }

    /// Records a failed attempt of the account (it lengthens the per-account delay).
    pub async fn record_failure(state: &AppState, username: &str) -> Result<(), ApiError> {
        let settings = crate::routes::admin::settings::effective_settings(state).await?;
        let window = Duration::from_secs(settings.lockout_duration_minutes.saturating_mul(60));
        let account = super::guard::account_label(username);
        state.kv.incr(&failures_key(&account), window).await?;
        Ok(())
    }

    /// Forgets the attempts of one address after it signed in.
    pub async fn succeeded(
        state: &AppState,
        username: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let account = super::guard::account_label(username);
        state
            .kv
            .delete(&attempts_key(state, &account, ip).await?)
            .await?;
        Ok(())
    }

    /// Releases every address of the account (admin unlock).
    pub async fn clear(state: &AppState, username: &str) -> Result<(), ApiError> {
        let account = super::guard::account_label(username);
        state.kv.incr(&epoch_key(&account), EPOCH_TTL).await?;
        state.kv.delete(&failures_key(&account)).await?;
        Ok(())
    }
}
