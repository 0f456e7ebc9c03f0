//! User settings, event-sourced: every change is a `user_settings_updated` event (with the old
//! and new value of each changed field) in the event store, and the document is the stored
//! snapshot plus the events after it, so every API process answers the same.
//!
//! `/api/v1/user/settings/` is declared with its trailing slash; the slash-less form answers a
//! 307 redirect to it, as the original does.

use axum::extract::{OriginalUri, State};
use axum::response::Redirect;
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventPayload, EventType};
use integr8s_core::user_settings::{
    current_settings, settings_at, EditorSettings, NotificationSettings, SettingChange, Theme,
    UserSettings,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppJson, AppPath, QueryPairs};
use crate::quotas::{self, Quotas};
use crate::state::AppState;

/// Channels a notification preference may name.
const CHANNELS: [&str; 3] = ["in_app", "webhook", "slack"];
/// Accepted editor tab sizes.
const TAB_SIZES: [i64; 3] = [2, 4, 8];
/// Longest accepted custom setting key and short text field, in characters.
const MAX_KEY_CHARS: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/user/settings", any(add_slash))
        .route("/api/v1/user/settings/", get(read).put(update))
        .route("/api/v1/user/settings/theme", put(update_theme))
        .route(
            "/api/v1/user/settings/notifications",
            put(update_notifications),
        )
        .route("/api/v1/user/settings/editor", put(update_editor))
        .route("/api/v1/user/settings/custom/{key}", put(update_custom))
        .route("/api/v1/user/settings/history", get(history))
        .route("/api/v1/user/settings/restore", post(restore))
}

/// 307 to the same path with a trailing slash, keeping the query and the method.
async fn add_slash(OriginalUri(uri): OriginalUri) -> Redirect {
    let target = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    Redirect::temporary(&target)
}

/// The contract's `UserSettingsUpdate`: every field optional, unknown fields ignored.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UserSettingsUpdate {
    #[serde(default)]
    theme: Option<Theme>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    date_format: Option<String>,
    #[serde(default)]
    time_format: Option<String>,
    #[serde(default)]
    notifications: Option<NotificationSettings>,
    #[serde(default)]
    editor: Option<EditorSettings>,
    #[serde(default)]
    custom_settings: Option<Map<String, Value>>,
}

/// The contract's `ThemeUpdateRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ThemeUpdateRequest {
    theme: Theme,
}

/// The contract's `RestoreSettingsRequest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RestoreSettingsRequest {
    timestamp: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The contract's `SettingsHistoryEntry`: one changed value (a change-less restore is one entry
/// with field `/` and null values).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SettingsHistoryEntry {
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    pub field: String,
    pub old_value: Value,
    pub new_value: Value,
    pub reason: Option<String>,
}

/// The contract's `SettingsHistoryResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SettingsHistoryResponse {
    pub history: Vec<SettingsHistoryEntry>,
    pub limit: i64,
}

fn check_editor(editor: &EditorSettings, loc: &[&str], issues: &mut Vec<ValidationIssue>) {
    if !(8..=32).contains(&editor.font_size) {
        issues.push(
            ValidationIssue::new(loc, "value_error", "Font size must be between 8 and 32")
                .at("font_size"),
        );
    }
    if !TAB_SIZES.contains(&editor.tab_size) {
        issues.push(
            ValidationIssue::new(loc, "value_error", "Tab size must be 2, 4 or 8").at("tab_size"),
        );
    }
}

fn check_notifications(
    notifications: &NotificationSettings,
    loc: &[&str],
    issues: &mut Vec<ValidationIssue>,
) {
    for (i, channel) in notifications.channels.iter().enumerate() {
        if !CHANNELS.contains(&channel.as_str()) {
            issues.push(
                ValidationIssue::new(
                    loc,
                    "enum",
                    "Input should be 'in_app', 'webhook' or 'slack'",
                )
                .at("channels")
                .at(i),
            );
        }
    }
}

fn check_text(field: &str, value: &str, issues: &mut Vec<ValidationIssue>) {
    if value.trim().is_empty() {
        issues.push(ValidationIssue::new(
            &["body", field],
            "string_too_short",
            "String should have at least 1 character",
        ));
    } else if value.chars().count() > MAX_KEY_CHARS {
        issues.push(ValidationIssue::new(
            &["body", field],
            "string_too_long",
            format!("String should have at most {MAX_KEY_CHARS} characters"),
        ));
    }
}

fn into_result(issues: Vec<ValidationIssue>) -> Result<(), ApiError> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(issues))
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(format!("serialize: {e}")))
}

/// Records the changes as one `user_settings_updated` event (none when there are no changes
/// and no `reason` to record), then answers the document rebuilt from the store.
async fn record(
    state: &AppState,
    user_id: &str,
    changes: Vec<SettingChange>,
    reason: Option<String>,
) -> Result<Json<UserSettings>, ApiError> {
    if !changes.is_empty() || reason.is_some() {
        let mut changed_fields: Vec<String> = Vec::new();
        for change in &changes {
            let top = change.top_field().to_owned();
            if !changed_fields.contains(&top) {
                changed_fields.push(top);
            }
        }
        let payload = EventPayload::UserSettingsUpdated {
            user_id: user_id.to_owned(),
            changed_fields,
            reason,
            changes,
        };
        let env = Envelope::new(payload, state.outbox.metadata(Some(user_id.to_owned())))
            .with_aggregate(user_id);
        state.outbox.emit_envelope(&env).await?;
    }
    Ok(Json(current_settings(state.store.as_ref(), user_id).await?))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<UserSettings>, ApiError> {
    Ok(Json(
        current_settings(state.store.as_ref(), &user.user_id).await?,
    ))
}

async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<UserSettingsUpdate>,
) -> Result<Json<UserSettings>, ApiError> {
    let mut issues = Vec::new();
    if let Some(editor) = &body.editor {
        check_editor(editor, &["body", "editor"], &mut issues);
    }
    if let Some(notifications) = &body.notifications {
        check_notifications(notifications, &["body", "notifications"], &mut issues);
    }
    for (field, value) in [
        ("timezone", &body.timezone),
        ("date_format", &body.date_format),
        ("time_format", &body.time_format),
    ] {
        if let Some(value) = value {
            check_text(field, value, &mut issues);
        }
    }
    into_result(issues)?;

    let current = current_settings(state.store.as_ref(), &user.user_id).await?;
    let mut wanted: Vec<(&str, Value)> = Vec::new();
    if let Some(theme) = &body.theme {
        wanted.push(("theme", to_value(theme)?));
    }
    for (field, value) in [
        ("timezone", body.timezone),
        ("date_format", body.date_format),
        ("time_format", body.time_format),
    ] {
        if let Some(value) = value {
            wanted.push((field, Value::from(value)));
        }
    }
    if let Some(notifications) = &body.notifications {
        wanted.push(("notifications", to_value(notifications)?));
    }
    if let Some(editor) = &body.editor {
        wanted.push(("editor", to_value(editor)?));
    }
    if let Some(custom) = body.custom_settings {
        check_custom(&state.config.quotas, &custom, &["body", "custom_settings"])?;
        wanted.push(("custom_settings", Value::Object(custom)));
    }
    let changes = wanted
        .into_iter()
        .filter_map(|(field, value)| current.change_field(field, value))
        .collect();
    record(&state, &user.user_id, changes, None).await
}

/// Sets one top-level field.
async fn set_field(
    state: &AppState,
    user_id: &str,
    field: &str,
    value: Value,
) -> Result<Json<UserSettings>, ApiError> {
    let current = current_settings(state.store.as_ref(), user_id).await?;
    let changes = current.change_field(field, value).into_iter().collect();
    record(state, user_id, changes, None).await
}

async fn update_theme(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<ThemeUpdateRequest>,
) -> Result<Json<UserSettings>, ApiError> {
    set_field(&state, &user.user_id, "theme", to_value(&body.theme)?).await
}

async fn update_notifications(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<NotificationSettings>,
) -> Result<Json<UserSettings>, ApiError> {
    let mut issues = Vec::new();
    check_notifications(&body, &["body"], &mut issues);
    into_result(issues)?;
    set_field(&state, &user.user_id, "notifications", to_value(&body)?).await
}

async fn update_editor(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<EditorSettings>,
) -> Result<Json<UserSettings>, ApiError> {
    let mut issues = Vec::new();
    check_editor(&body, &["body"], &mut issues);
    into_result(issues)?;
    set_field(&state, &user.user_id, "editor", to_value(&body)?).await
}

/// Checks custom settings against the quotas: at most `max_custom_settings` keys, each key at
/// most [`MAX_KEY_CHARS`] characters and each value at most `max_custom_setting_bytes` as JSON.
fn check_custom(caps: &Quotas, custom: &Map<String, Value>, loc: &[&str]) -> Result<(), ApiError> {
    check_custom_count(caps, custom.len(), loc)?;
    let mut issues = Vec::new();
    for (key, value) in custom {
        let mut at: Vec<&str> = loc.to_vec();
        at.push(key.as_str());
        if key.chars().count() > MAX_KEY_CHARS {
            issues.push(ValidationIssue::new(
                &at,
                "string_too_long",
                format!("Key should have at most {MAX_KEY_CHARS} characters"),
            ));
        }
        issues.extend(custom_value_too_large(caps, value, &at));
    }
    into_result(issues)
}

fn check_custom_count(caps: &Quotas, count: usize, loc: &[&str]) -> Result<(), ApiError> {
    if count > caps.max_custom_settings {
        return Err(ApiError::invalid(
            loc,
            "too_long",
            format!(
                "At most {} custom settings per user",
                caps.max_custom_settings
            ),
        ));
    }
    Ok(())
}

fn custom_value_too_large(caps: &Quotas, value: &Value, loc: &[&str]) -> Option<ValidationIssue> {
    let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    (size > caps.max_custom_setting_bytes)
        .then(|| quotas::too_large(loc, caps.max_custom_setting_bytes))
}

async fn update_custom(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<Map<String, Value>>,
) -> Result<Json<UserSettings>, ApiError> {
    if key.trim().is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(ApiError::invalid(
            &["path", "key"],
            "string_too_long",
            format!("Key should have 1 to {MAX_KEY_CHARS} characters"),
        ));
    }
    let current = current_settings(state.store.as_ref(), &user.user_id).await?;
    // Only what this call adds is checked: the value, and one key more unless it replaces one.
    let caps = &state.config.quotas;
    let value = Value::Object(body);
    let count =
        current.custom_settings.len() + usize::from(!current.custom_settings.contains_key(&key));
    check_custom_count(caps, count, &["body"])?;
    into_result(
        custom_value_too_large(caps, &value, &["body"])
            .into_iter()
            .collect(),
    )?;
    let changes = current.change_custom(&key, value).into_iter().collect();
    record(&state, &user.user_id, changes, None).await
}

async fn history(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: QueryPairs,
) -> Result<Json<SettingsHistoryResponse>, ApiError> {
    let limit = query.int_in("limit", 50, 1, 200)?;
    let max = usize::try_from(limit).unwrap_or(200);
    let events = state
        .store
        .recent_settings_events(&user.user_id, u32::try_from(limit).unwrap_or(200))
        .await?;
    let mut entries = Vec::new();
    for event in events {
        let EventPayload::UserSettingsUpdated {
            changes, reason, ..
        } = event.envelope.payload
        else {
            continue;
        };
        let entry = |field: &str, old_value: Value, new_value: Value| SettingsHistoryEntry {
            timestamp: event.envelope.timestamp,
            event_type: EventType::UserSettingsUpdated,
            field: field.to_owned(),
            old_value,
            new_value,
            reason: reason.clone(),
        };
        if changes.is_empty() {
            // A restore that changed nothing is still part of the history.
            entries.push(entry("/", Value::Null, Value::Null));
        }
        for change in changes {
            entries.push(entry(&change.field, change.old_value, change.new_value));
        }
        if entries.len() >= max {
            break;
        }
    }
    entries.truncate(max);
    Ok(Json(SettingsHistoryResponse {
        history: entries,
        limit,
    }))
}

/// A datetime with an offset (RFC 3339) or a naive one read as UTC, as pydantic accepts.
fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        })
        .map_err(|_| {
            ApiError::invalid(
                &["body", "timestamp"],
                "datetime_from_date_parsing",
                "Input should be a valid datetime",
            )
        })
}

async fn restore(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<RestoreSettingsRequest>,
) -> Result<Json<UserSettings>, ApiError> {
    let at = parse_timestamp(&body.timestamp)?;
    let store = state.store.as_ref();
    let target = settings_at(store, &user.user_id, at).await?;
    let current = current_settings(store, &user.user_id).await?;
    let changes = current.diff(&target);
    let reason = body
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| format!("Restored to {}", at.to_rfc3339()));
    record(&state, &user.user_id, changes, Some(reason)).await
}
