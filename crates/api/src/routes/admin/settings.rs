//! `/api/v1/admin/settings/`: the system settings (get, update, reset) and their audit log.
//!
//! The effective settings are the stored document, or defaults derived from the server
//! configuration when none is stored (`integr8s_core::effective_settings`, shared with the
//! coordinator); [`effective_settings`] is what the rest of the API applies
//! (run limits of new executions, password length, session lifetime, lockout). They are read
//! from the store on every use, so every API process sees a change at once.

use axum::extract::{OriginalUri, State};
use axum::response::Redirect;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use integr8s_core::effective_settings::MAX_TIMEOUT_SECONDS;
use integr8s_core::system_settings::{
    parse_memory, LogLevel, SettingsAuditAction, SettingsAuditEntry, SystemSettings,
};
use integr8s_core::user::User;
use integr8s_core::RunLimits;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AdminUser;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{deserialize_value, AppJson, QueryPairs};
use crate::state::{ApiConfig, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/settings", any(add_slash))
        .route("/api/v1/admin/settings/", get(read).put(update))
        .route("/api/v1/admin/settings/reset", post(reset))
        .route("/api/v1/admin/settings/audit", get(audit_log))
}

/// 307 to the same path with a trailing slash, keeping the query and the method (the admin
/// collections are declared with their slash, as in the original).
pub(super) async fn add_slash(OriginalUri(uri): OriginalUri) -> Redirect {
    let target = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    Redirect::temporary(&target)
}

/// The settings in force: the stored document, else the configuration's defaults.
pub async fn effective_settings(state: &AppState) -> Result<SystemSettings, ApiError> {
    Ok(state.settings.current().await?)
}

/// The limits of a new execution under `settings`: timeout and memory from the settings, the
/// rest from the configuration.
pub fn run_limits(cfg: &ApiConfig, settings: &SystemSettings) -> RunLimits {
    RunLimits {
        timeout_seconds: settings.max_timeout_seconds,
        memory_bytes: settings
            .memory_limit_bytes()
            .unwrap_or(cfg.run_limits.memory_bytes),
        ..cfg.run_limits
    }
}

/// The request body (the contract's `SystemSettingsSchema-Input`): every field optional; a
/// missing one takes the schema default. Ranges and patterns are checked before storing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "SystemSettingsInput")]
pub struct SettingsInput {
    #[schemars(range(min = 1, max = 3600))]
    pub max_timeout_seconds: i64,
    #[schemars(regex(pattern = r"^\d+(Mi|Gi|Ki)$"))]
    pub memory_limit: String,
    #[schemars(regex(pattern = r"^\d+m$"))]
    pub cpu_limit: String,
    #[schemars(range(min = 1, max = 100))]
    pub max_concurrent_executions: i64,
    #[schemars(range(min = 8, max = 32))]
    pub password_min_length: i64,
    #[schemars(range(min = 5, max = 1440))]
    pub session_timeout_minutes: i64,
    #[schemars(range(min = 3, max = 10))]
    pub max_login_attempts: i64,
    #[schemars(range(min = 5, max = 60))]
    pub lockout_duration_minutes: i64,
    #[schemars(range(min = 7, max = 90))]
    pub metrics_retention_days: i64,
    pub log_level: LogLevel,
    pub enable_tracing: bool,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_rate: f64,
}

/// One page of the settings audit log, newest first (an integr8s addition to the contract).
#[derive(Debug, Serialize, JsonSchema)]
pub struct SettingsAuditLogResponse {
    pub entries: Vec<SettingsAuditEntry>,
    pub total: u64,
    pub limit: i64,
    pub skip: i64,
}

impl Default for SettingsInput {
    fn default() -> Self {
        let d = SystemSettings::default();
        let wide = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            max_timeout_seconds: wide(d.max_timeout_seconds),
            memory_limit: d.memory_limit,
            cpu_limit: d.cpu_limit,
            max_concurrent_executions: d.max_concurrent_executions.into(),
            password_min_length: d.password_min_length.into(),
            session_timeout_minutes: wide(d.session_timeout_minutes),
            max_login_attempts: d.max_login_attempts.into(),
            lockout_duration_minutes: wide(d.lockout_duration_minutes),
            metrics_retention_days: d.metrics_retention_days.into(),
            log_level: d.log_level,
            enable_tracing: d.enable_tracing,
            sampling_rate: d.sampling_rate,
        }
    }
}

fn check_range(issues: &mut Vec<ValidationIssue>, field: &str, value: i64, min: i64, max: i64) {
    if value < min {
        issues.push(ValidationIssue::new(
            &["body", field],
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
        ));
    } else if value > max {
        issues.push(ValidationIssue::new(
            &["body", field],
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
        ));
    }
}

fn check_pattern(issues: &mut Vec<ValidationIssue>, field: &str, ok: bool, pattern: &str) {
    if !ok {
        issues.push(ValidationIssue::new(
            &["body", field],
            "string_pattern_mismatch",
            format!("String should match pattern '{pattern}'"),
        ));
    }
}

fn is_millicores(s: &str) -> bool {
    s.strip_suffix('m')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Validates the input against the schema's ranges and patterns.
fn validate(input: SettingsInput) -> Result<SystemSettings, ApiError> {
    let mut issues = Vec::new();
    let i = &input;
    check_range(
        &mut issues,
        "max_timeout_seconds",
        i.max_timeout_seconds,
        1,
        MAX_TIMEOUT_SECONDS as i64,
    );
    check_pattern(
        &mut issues,
        "memory_limit",
        parse_memory(&i.memory_limit).is_some_and(|b| b > 0),
        r"^\d+(Mi|Gi|Ki)$",
    );
    check_pattern(
        &mut issues,
        "cpu_limit",
        is_millicores(&i.cpu_limit),
        r"^\d+m$",
    );
    check_range(
        &mut issues,
        "max_concurrent_executions",
        i.max_concurrent_executions,
        1,
        100,
    );
    check_range(
        &mut issues,
        "password_min_length",
        i.password_min_length,
        8,
        32,
    );
    check_range(
        &mut issues,
        "session_timeout_minutes",
        i.session_timeout_minutes,
        5,
        1440,
    );
    check_range(
        &mut issues,
        "max_login_attempts",
        i.max_login_attempts,
        3,
        10,
    );
    check_range(
        &mut issues,
        "lockout_duration_minutes",
        i.lockout_duration_minutes,
        5,
        60,
    );
    check_range(
        &mut issues,
        "metrics_retention_days",
        i.metrics_retention_days,
        7,
        90,
    );
    if !(0.0..=1.0).contains(&i.sampling_rate) {
        let (kind, msg) = if i.sampling_rate < 0.0 {
            (
                "greater_than_equal",
                "Input should be greater than or equal to 0",
            )
        } else {
            ("less_than_equal", "Input should be less than or equal to 1")
        };
        issues.push(ValidationIssue::new(&["body", "sampling_rate"], kind, msg));
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    // Every value is within its (positive, small) range now.
    let narrow = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let wide = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    Ok(SystemSettings {
        max_timeout_seconds: wide(input.max_timeout_seconds),
        memory_limit: input.memory_limit,
        cpu_limit: input.cpu_limit,
        max_concurrent_executions: narrow(input.max_concurrent_executions),
        password_min_length: narrow(input.password_min_length),
        session_timeout_minutes: wide(input.session_timeout_minutes),
        max_login_attempts: narrow(input.max_login_attempts),
        lockout_duration_minutes: wide(input.lockout_duration_minutes),
        metrics_retention_days: narrow(input.metrics_retention_days),
        log_level: input.log_level,
        enable_tracing: input.enable_tracing,
        sampling_rate: input.sampling_rate,
    })
}

fn audit_entry(
    admin: &User,
    action: SettingsAuditAction,
    old_values: SystemSettings,
    new_values: SystemSettings,
) -> SettingsAuditEntry {
    SettingsAuditEntry {
        audit_id: integr8s_core::new_id(),
        action,
        user_id: admin.user_id.clone(),
        username: admin.username.clone(),
        timestamp: integr8s_core::now(),
        old_values,
        new_values,
    }
}

async fn read(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Result<Json<SystemSettings>, ApiError> {
    Ok(Json(effective_settings(&state).await?))
}

async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppJson(body): AppJson<Value>,
) -> Result<Json<SystemSettings>, ApiError> {
    let settings = validate(deserialize_value::<SettingsInput>(body)?)?;
    let old = effective_settings(&state).await?;
    let entry = audit_entry(
        &admin,
        SettingsAuditAction::SystemSettingsUpdated,
        old,
        settings.clone(),
    );
    state.store.save_system_settings(&settings, &entry).await?;
    tracing::info!(admin = %admin.username, "system settings updated");
    Ok(Json(settings))
}

async fn reset(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<SystemSettings>, ApiError> {
    let old = effective_settings(&state).await?;
    let defaults = state.settings.defaults().clone();
    let entry = audit_entry(
        &admin,
        SettingsAuditAction::SystemSettingsReset,
        old,
        defaults.clone(),
    );
    state.store.reset_system_settings(&entry).await?;
    tracing::info!(admin = %admin.username, "system settings reset to defaults");
    Ok(Json(defaults))
}

async fn audit_log(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<SettingsAuditLogResponse>, ApiError> {
    let limit = query.int_in("limit", 50, 1, 500)?;
    let skip = query.int_in("skip", 0, 0, i64::from(u32::MAX))?;
    let (entries, total) = state
        .store
        .settings_audit_log(
            u32::try_from(limit).unwrap_or(50),
            u32::try_from(skip).unwrap_or(0),
        )
        .await?;
    Ok(Json(SettingsAuditLogResponse {
        entries,
        total,
        limit,
        skip,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_and_bad_patterns_are_all_reported() {
        let input = SettingsInput {
            max_timeout_seconds: 0,
            memory_limit: "512MB".to_owned(),
            cpu_limit: "2".to_owned(),
            sampling_rate: 1.5,
            ..SettingsInput::default()
        };
        let Err(ApiError::Validation(issues)) = validate(input) else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = issues.iter().map(|i| i.loc[1].clone()).collect();
        assert_eq!(
            fields,
            [
                "max_timeout_seconds",
                "memory_limit",
                "cpu_limit",
                "sampling_rate"
            ]
        );
        assert_eq!(
            validate(SettingsInput::default()).unwrap(),
            SystemSettings::default()
        );
    }
}
