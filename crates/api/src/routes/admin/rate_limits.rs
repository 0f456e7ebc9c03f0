//! Admin rate limits: the default rules, per-user overrides (stored durably, applied to the
//! user's next request) and resetting a user's counters.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::ports::ratelimit::{
    EndpointGroup, RateLimitAlgorithm, RateLimitRule, UserRateLimit,
};
use integr8s_core::user::User;
use serde::{Deserialize, Serialize};

use crate::auth::AdminUser;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppJson, AppPath};
use crate::ratelimit::{rules::compile_pattern, RateLimits};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/rate-limits/defaults", get(defaults))
        .route(
            "/api/v1/admin/rate-limits/{user_id}",
            get(user_limits).put(update),
        )
        .route("/api/v1/admin/rate-limits/{user_id}/reset", post(reset))
}

/// The contract's `RateLimitRuleResponse`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RateLimitRuleResponse {
    pub endpoint_pattern: String,
    pub group: EndpointGroup,
    pub requests: u32,
    pub window_seconds: u32,
    pub algorithm: RateLimitAlgorithm,
    pub burst_multiplier: f64,
    pub priority: i32,
    pub enabled: bool,
}

impl From<&RateLimitRule> for RateLimitRuleResponse {
    fn from(r: &RateLimitRule) -> Self {
        Self {
            endpoint_pattern: r.endpoint_pattern.clone(),
            group: r.group,
            requests: r.requests,
            window_seconds: r.window_seconds,
            algorithm: r.algorithm,
            burst_multiplier: r.burst_multiplier,
            priority: r.priority,
            enabled: r.enabled,
        }
    }
}

/// The contract's `UserRateLimitConfigResponse`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserRateLimitConfigResponse {
    pub user_id: String,
    pub bypass_rate_limit: bool,
    pub global_multiplier: f64,
    pub rules: Vec<RateLimitRuleResponse>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
}

impl From<&UserRateLimit> for UserRateLimitConfigResponse {
    fn from(c: &UserRateLimit) -> Self {
        Self {
            user_id: c.user_id.clone(),
            bypass_rate_limit: c.bypass_rate_limit,
            global_multiplier: c.global_multiplier,
            rules: c.rules.iter().map(Into::into).collect(),
            created_at: Some(c.created_at),
            updated_at: Some(c.updated_at),
            notes: c.notes.clone(),
        }
    }
}

/// The contract's `EndpointUsageStats`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EndpointUsageStats {
    pub algorithm: RateLimitAlgorithm,
    pub remaining: u32,
}

/// The contract's `UserRateLimitsResponse`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserRateLimitsResponse {
    pub user_id: String,
    pub rate_limit_config: Option<UserRateLimitConfigResponse>,
    /// Live buckets of the user by endpoint pattern.
    pub current_usage: BTreeMap<String, EndpointUsageStats>,
}

fn default_algorithm() -> RateLimitAlgorithm {
    RateLimitAlgorithm::SlidingWindow
}

fn default_burst() -> f64 {
    1.5
}

fn default_true() -> bool {
    true
}

fn default_multiplier() -> f64 {
    1.0
}

/// The contract's `RateLimitRuleRequest`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct RateLimitRuleRequest {
    pub endpoint_pattern: String,
    pub group: EndpointGroup,
    pub requests: i64,
    pub window_seconds: i64,
    #[serde(default = "default_algorithm")]
    pub algorithm: RateLimitAlgorithm,
    #[serde(default = "default_burst")]
    pub burst_multiplier: f64,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// The contract's `RateLimitUpdateRequest`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct RateLimitUpdateRequest {
    #[serde(default)]
    pub bypass_rate_limit: bool,
    #[serde(default = "default_multiplier")]
    pub global_multiplier: f64,
    #[serde(default)]
    pub rules: Vec<RateLimitRuleRequest>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The contract's `RateLimitUpdateResponse`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RateLimitUpdateResponse {
    pub user_id: String,
    pub updated: bool,
    pub config: UserRateLimitConfigResponse,
}

/// The contract's `MessageResponse`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MessageResponse {
    pub message: String,
}

const MAX_RULES: usize = 100;
const MAX_NOTES: usize = 1000;
const MAX_PATTERN: usize = 500;

fn check_rule(i: usize, r: &RateLimitRuleRequest, issues: &mut Vec<ValidationIssue>) {
    let at = |field: &str, kind: &str, msg: &str| {
        ValidationIssue::new(&["body", "rules"], kind, msg)
            .at(i)
            .at(field)
    };
    if r.endpoint_pattern.is_empty() || r.endpoint_pattern.len() > MAX_PATTERN {
        issues.push(at(
            "endpoint_pattern",
            "string_length",
            "Pattern must be 1 to 500 characters",
        ));
    } else if let Err(e) = compile_pattern(&r.endpoint_pattern) {
        issues.push(at(
            "endpoint_pattern",
            "value_error",
            &format!("Invalid regular expression: {e}"),
        ));
    }
    if !(1..=1_000_000).contains(&r.requests) {
        issues.push(at(
            "requests",
            "greater_than_equal",
            "Requests must be between 1 and 1000000",
        ));
    }
    if !(1..=86_400).contains(&r.window_seconds) {
        issues.push(at(
            "window_seconds",
            "greater_than_equal",
            "Window must be between 1 and 86400 seconds",
        ));
    }
    if !(r.burst_multiplier.is_finite() && (1.0..=100.0).contains(&r.burst_multiplier)) {
        issues.push(at(
            "burst_multiplier",
            "value_error",
            "Burst multiplier must be between 1 and 100",
        ));
    }
}

/// Validates the update; every problem is reported at once.
fn validate(body: &RateLimitUpdateRequest) -> Result<Vec<RateLimitRule>, ApiError> {
    let mut issues = Vec::new();
    if !(body.global_multiplier.is_finite() && body.global_multiplier > 0.0)
        || body.global_multiplier > 1000.0
    {
        issues.push(ValidationIssue::new(
            &["body", "global_multiplier"],
            "value_error",
            "Global multiplier must be greater than 0 and at most 1000",
        ));
    }
    if body.rules.len() > MAX_RULES {
        issues.push(ValidationIssue::new(
            &["body", "rules"],
            "too_long",
            "At most 100 rules",
        ));
    }
    if body.notes.as_ref().is_some_and(|n| n.len() > MAX_NOTES) {
        issues.push(ValidationIssue::new(
            &["body", "notes"],
            "string_too_long",
            "Notes must be at most 1000 characters",
        ));
    }
    for (i, r) in body.rules.iter().enumerate() {
        check_rule(i, r, &mut issues);
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    Ok(body
        .rules
        .iter()
        .map(|r| RateLimitRule {
            endpoint_pattern: r.endpoint_pattern.clone(),
            group: r.group,
            requests: u32::try_from(r.requests).unwrap_or(1),
            window_seconds: u32::try_from(r.window_seconds).unwrap_or(1),
            algorithm: r.algorithm,
            burst_multiplier: r.burst_multiplier,
            priority: r.priority,
            enabled: r.enabled,
        })
        .collect())
}

async fn known_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state.store.user_by_id(user_id).await?.ok_or_else(|| {
        ApiError::domain(
            StatusCode::NOT_FOUND,
            "UserNotFoundError",
            format!("User {user_id} not found"),
        )
    })
}

async fn defaults(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Json<Vec<RateLimitRuleResponse>> {
    Json(state.rate_limits.defaults().map(Into::into).collect())
}

async fn user_limits(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(user_id): AppPath<String>,
) -> Result<Json<UserRateLimitsResponse>, ApiError> {
    known_user(&state, &user_id).await?;
    let config = state.store.get_user_rate_limit(&user_id).await?;
    let prefix = RateLimits::user_prefix(&user_id);
    let usage = state
        .rate_limits
        .limiter()
        .usage(&prefix, integr8s_core::now())
        .await?;
    let current_usage = usage
        .into_iter()
        .map(|u| {
            let endpoint = u.key.strip_prefix(&prefix).unwrap_or(&u.key).to_owned();
            let stats = EndpointUsageStats {
                algorithm: u.algorithm,
                remaining: u.remaining,
            };
            (endpoint, stats)
        })
        .collect();
    Ok(Json(UserRateLimitsResponse {
        user_id,
        rate_limit_config: config.as_ref().map(Into::into),
        current_usage,
    }))
}

async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(user_id): AppPath<String>,
    AppJson(body): AppJson<RateLimitUpdateRequest>,
) -> Result<Json<RateLimitUpdateResponse>, ApiError> {
    let rules = validate(&body)?;
    known_user(&state, &user_id).await?;
    let now = integr8s_core::now();
    let saved = state
        .store
        .put_user_rate_limit(&UserRateLimit {
            user_id: user_id.clone(),
            bypass_rate_limit: body.bypass_rate_limit,
            global_multiplier: body.global_multiplier,
            rules,
            created_at: now,
            updated_at: now,
            notes: body.notes,
        })
        .await?;
    state.rate_limits.invalidate();
    tracing::info!(%user_id, bypass = saved.bypass_rate_limit, "rate-limit override saved");
    Ok(Json(RateLimitUpdateResponse {
        user_id,
        updated: true,
        config: (&saved).into(),
    }))
}

async fn reset(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(user_id): AppPath<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    known_user(&state, &user_id).await?;
    let cleared = state
        .rate_limits
        .limiter()
        .reset(&RateLimits::user_prefix(&user_id))
        .await?;
    tracing::info!(%user_id, cleared, "rate-limit counters reset");
    Ok(Json(MessageResponse {
        message: format!("Rate limits reset successfully for user {user_id}"),
    }))
}
