//! `/api/v1/auth/*`: register, login, logout and the current user.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventPayload};
use integr8s_core::ports::NewUser;
use integr8s_core::user::{Role, User};
use integr8s_core::StoreError;
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::counter;
use serde::{Deserialize, Serialize};

use crate::auth::{self, guard, lockout, CurrentUser, ACCESS_COOKIE, CSRF_COOKIE};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppForm, AppJson};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
}

/// The contract's `UserResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserResponse {
    pub username: String,
    pub email: String,
    pub role: Role,
    pub is_active: bool,
    pub user_id: String,
    pub is_superuser: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub bypass_rate_limit: Option<bool>,
    pub global_multiplier: Option<f64>,
    pub has_custom_limits: Option<bool>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            username: u.username,
            email: u.email,
            role: u.role,
            is_active: u.is_active,
            user_id: u.user_id,
            is_superuser: u.is_superuser,
            created_at: u.created_at,
            updated_at: u.updated_at,
            bypass_rate_limit: None,
            global_multiplier: None,
            has_custom_limits: None,
        }
    }
}

/// The contract's `UserCreate`; `role` and `is_active` are accepted and ignored.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct UserCreate {
    username: String,
    email: String,
    password: String,
}

/// Special-use domain names (RFC 6761 and friends) that no deliverable address has; common
/// e-mail validators, the contract's among them, refuse them (`example.*` is not among them).
const SPECIAL_USE_DOMAINS: [&str; 6] = ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// A light syntactic check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub(crate) fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// Whether the address's domain is, or is under, a special-use name.
fn has_special_use_domain(email: &str) -> bool {
    let domain = email
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    SPECIAL_USE_DOMAINS
        .iter()
        .any(|name| domain == *name || domain.ends_with(&format!(".{name}")))
}

/// The validation issue of an e-mail address at `body.email`, worded as the contract's
/// validator words it; `None` when the address is acceptable.
pub(crate) fn email_issue(email: &str) -> Option<ValidationIssue> {
    let msg = if !is_valid_email(email) {
        "value is not a valid email address: An email address must have an @-sign and a valid domain."
    } else if has_special_use_domain(email) {
        "value is not a valid email address: The part after the @-sign is a special-use or reserved name that cannot be used with email."
    } else {
        return None;
    };
    Some(ValidationIssue::new(&["body", "email"], "value_error", msg))
}

/// Stores and publishes an audit event; a failure is logged, never fails the request it describes.
async fn emit_user_event(state: &AppState, payload: EventPayload, user_id: Option<String>) {
    let mut env = Envelope::new(payload, state.outbox.metadata(user_id.clone()));
    if let Some(id) = user_id {
        env = env.with_aggregate(id);
    }
    if let Err(e) = state.outbox.emit_envelope(&env).await {
        tracing::warn!(error = %e, event_type = %env.event_type(), "could not store auth event");
    }
}

async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(body): AppJson<UserCreate>,
) -> Result<Json<UserResponse>, ApiError> {
    guard::throttle_register(&state, ip).await?;
    let mut issues: Vec<ValidationIssue> = [
        guard::too_long("username", &body.username, guard::USERNAME_MAX),
        guard::too_long("email", &body.email, guard::EMAIL_MAX),
        guard::too_long("password", &body.password, guard::PASSWORD_MAX),
    ]
    .into_iter()
    .flatten()
    .collect();
    let username = body.username.trim().to_owned();
    if username.is_empty() {
        issues.push(ValidationIssue::new(
            &["body", "username"],
            "string_too_short",
            "String should have at least 1 character",
        ));
    }
    issues.extend(email_issue(&body.email));
    let min = crate::routes::admin::settings::effective_settings(&state)
        .await?
        .password_min_length as usize;
    if body.password.chars().count() < min {
        issues.push(ValidationIssue::new(
            &["body", "password"],
            "string_too_short",
            format!("String should have at least {min} characters"),
        ));
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    if state.store.user_by_username(&username).await?.is_some() {
        return Err(ApiError::conflict("Username already registered"));
    }
    let password_hash = guard::hash_password(&state, body.password).await?;
    let new_user = NewUser {
        user_id: integr8s_core::new_id(),
        username,
        email: body.email.trim().to_owned(),
        password_hash,
        role: Role::User,
        is_superuser: false,
    };
    let user = match state.store.create_user(&new_user).await {
        Ok(user) => user,
        Err(StoreError::Conflict(field)) if field.contains("email") => {
            return Err(ApiError::conflict("Email already registered"));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict("Username already registered"))
        }
        Err(e) => return Err(e.into()),
    };
    emit_user_event(
        &state,
        EventPayload::UserRegistered {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
        },
        Some(user.user_id.clone()),
    )
    .await;
    Ok(Json(user.into()))
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    form: AppForm,
) -> Result<Response, ApiError> {
    let mut issues = Vec::new();
    let username = form.required("username").map_err(|i| issues.push(i)).ok();
    let password = form.required("password").map_err(|i| issues.push(i)).ok();
    if form
        .get("grant_type")
        .is_some_and(|g| !g.is_empty() && g != "password")
    {
        issues.push(ValidationIssue::new(
            &["body", "grant_type"],
            "string_pattern_mismatch",
            "String should match pattern '^password$'",
        ));
    }
    issues.extend(username.and_then(|u| guard::too_long("username", u, guard::USERNAME_MAX)));
    issues.extend(password.and_then(|p| guard::too_long("password", p, guard::PASSWORD_MAX)));
    let (Some(username), Some(password), true) = (username, password, issues.is_empty()) else {
        return Err(ApiError::Validation(issues));
    };
    let username = username.to_owned();
    counter!(catalogue::AUTHENTICATION_ATTEMPTS_TOTAL).increment(1);
    let failed = |reason: &'static str| {
        counter!(catalogue::AUTHENTICATION_FAILURES_TOTAL, "reason" => reason).increment(1);
    };
    guard::throttle_login(&state, client, &username)
        .await
        .inspect_err(|_| failed("throttled"))?;
    let ip = client.map(|ip| ip.to_string());
    let auth_failed = |reason: &str| EventPayload::AuthFailed {
        username: Some(guard::audit_username(&username)),
        reason: reason.to_owned(),
        ip_address: ip.clone(),
    };

    let attempt = lockout::begin(&state, &username, client).await?;
    if attempt.locked() {
        failed("locked");
        emit_user_event(&state, auth_failed("account_locked"), None).await;
        return Err(lockout::locked_error());
    }
    tokio::time::sleep(guard::delay_for(attempt.account_failures)).await;
    let user = state.store.user_by_username(&username).await?;
    let matches = guard::verify_password(
        &state,
        password.to_owned(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            failed("credentials");
            emit_user_event(&state, auth_failed("invalid_credentials"), None).await;
            lockout::record_failure(&state, &username).await?;
            if attempt.last() {
                return Err(lockout::locked_error());
            }
            return Err(ApiError::invalid_credentials());
        }
    };
    if !user.is_active {
        failed("deactivated");
        return Err(ApiError::domain(
            StatusCode::FORBIDDEN,
            "AccountDeactivatedError",
            format!("Account '{}' is deactivated", user.username),
        ));
    }
    lockout::succeeded(&state, &username, client).await?;

    let settings = crate::routes::admin::settings::effective_settings(&state).await?;
    let lifetime =
        std::time::Duration::from_secs(settings.session_timeout_minutes.saturating_mul(60));
    let token = auth::session::issue(&state, &user, lifetime).await?;
    let csrf_token = auth::csrf::issue(&state.config.secret, &token)?;
    let cfg = &state.config;
    let body = LoginResponse {
        message: "Login successful".to_owned(),
        username: user.username.clone(),
        role: user.role,
        csrf_token: csrf_token.clone(),
    };
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(ACCESS_COOKIE, &token, lifetime, true, cfg.cookie_secure),
    );
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(CSRF_COOKIE, &csrf_token, lifetime, false, cfg.cookie_secure),
    );
    no_store(&mut response);
    emit_user_event(
        &state,
        EventPayload::UserLoggedIn {
            user_id: user.user_id.clone(),
            login_method: "password".to_owned(),
            ip_address: ip.clone(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        },
        Some(user.user_id),
    )
    .await;
    Ok(response)
}

/// The contract's `LoginResponse` (the session itself travels in cookies).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LoginResponse {
    pub message: String,
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

/// The contract's `MessageResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MessageResponse {
    pub message: String,
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let subject = auth::cookie(&headers, ACCESS_COOKIE)
        .and_then(|token| auth::session::subject_allow_expired(&state, &token));
    if let Some(user_id) = subject {
        if let Some(user) = state.store.user_by_id(&user_id).await? {
            auth::session::end_all(&state, &user.user_id).await?;
            emit_user_event(
                &state,
                EventPayload::UserLoggedOut {
                    user_id: user.user_id.clone(),
                    logout_reason: Some("user_initiated".to_owned()),
                },
                Some(user.user_id),
            )
            .await;
        }
    }
    let secure = state.config.cookie_secure;
    let body = MessageResponse {
        message: "Logout successful".to_owned(),
    };
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    let zero = std::time::Duration::ZERO;
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(ACCESS_COOKIE, "", zero, true, secure),
    );
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(CSRF_COOKIE, "", zero, false, secure),
    );
    Ok(response)
}

async fn me(CurrentUser(user): CurrentUser) -> Response {
    let mut response = Json(UserResponse::from(user)).into_response();
    no_store(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::{email_issue, is_valid_email};

    #[test]
    fn email_check_accepts_normal_addresses_only() {
        assert!(is_valid_email("a.b@example.com"));
        assert!(!is_valid_email("not-an-email"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("a b@example.com"));
        assert!(!is_valid_email("@example.com"));
        assert!(!is_valid_email("a@@example.com"));
    }

    #[test]
    fn special_use_domains_are_refused_like_the_contract_validator_does() {
        for bad in [
            "admin@integr8s.local",
            "a@b.test",
            "a@x.localhost",
            "a@example.invalid",
            "a@foo.onion",
            "a@1.0.0.127.in-addr.arpa",
            "a@HOST.LOCAL",
        ] {
            let issue = email_issue(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(issue.msg.contains("special-use"), "{bad}: {}", issue.msg);
        }
        for good in [
            "admin@example.com",
            "a@mail.example.org",
            "a@localhost.dev",
            "a@test.io",
        ] {
            assert!(email_issue(good).is_none(), "{good} refused");
        }
        assert!(email_issue("nope").is_some_and(|i| i.msg.contains("@-sign")));
    }
}
