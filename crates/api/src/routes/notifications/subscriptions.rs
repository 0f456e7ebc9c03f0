//! Per-channel notification subscriptions: always one entry per channel (defaults until the
//! user saves one). Enabling the webhook channel gives it a signing secret, returned as the
//! extra field `webhook_secret`; receivers check `X-Integr8s-Signature` with it.

use axum::extract::State;
use axum::Json;
use integr8s_core::notification::{
    effective_subscriptions, NotificationChannel, NotificationSeverity, Subscription,
};
use serde::{Deserialize, Deserializer, Serialize};

use super::expected_one_of;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppJson, AppPath};
use crate::state::AppState;

/// Longest accepted webhook URL.
const MAX_URL_LEN: usize = 2048;
/// Longest accepted tag, time zone or quiet-hours time, in characters.
const MAX_TAG_CHARS: usize = 100;

/// `Some(value)` when the field is present (also `Some(None)` for an explicit null), `None`
/// when absent.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The contract's `SubscriptionUpdate`. Absent fields keep their current value.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionUpdate {
    enabled: bool,
    severities: Option<Vec<NotificationSeverity>>,
    include_tags: Option<Vec<String>>,
    exclude_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    slack_webhook: Option<Option<String>>,
    quiet_hours_enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    quiet_hours_start: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    quiet_hours_end: Option<Option<String>>,
    timezone: Option<String>,
    batch_interval_minutes: Option<i64>,
}

fn parse_channel(raw: &str) -> Result<NotificationChannel, ApiError> {
    NotificationChannel::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = NotificationChannel::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        ApiError::invalid(
            &["path", "channel"],
            "enum",
            format!("Input should be {}", expected_one_of(&names)),
        )
    })
}

/// `http://` on a loopback host, with no user info (so the host cannot be disguised).
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || port.starts_with(':'),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost")
}

fn check_url(
    field: &str,
    url: &str,
    prefix: &str,
    pattern: &str,
    allow_insecure: bool,
) -> Result<(), ValidationIssue> {
    let well_formed = url.len() <= MAX_URL_LEN && !url.chars().any(char::is_whitespace);
    let secure = url.starts_with(prefix) && url.len() > prefix.len();
    if well_formed && (secure || (allow_insecure && is_loopback_http(url))) {
        Ok(())
    } else {
        Err(ValidationIssue::new(
            &["body", field],
            "string_pattern_mismatch",
            format!("String should match pattern '{pattern}'"),
        ))
    }
}

fn required_url(field: &str, channel: NotificationChannel) -> ValidationIssue {
    ValidationIssue::new(
        &["body", field],
        "value_error",
        format!("{field} is required to enable the {channel} channel"),
    )
}

/// 32 random bytes, hex.
fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness for a webhook secret: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Applies `update` to `current`, validating it against the contract.
fn apply(
    mut s: Subscription,
    update: SubscriptionUpdate,
    allow_insecure: bool,
    max_tags: usize,
) -> Result<Subscription, ApiError> {
    let mut issues = Vec::new();
    for (field, tags) in [
        ("include_tags", &update.include_tags),
        ("exclude_tags", &update.exclude_tags),
    ] {
        let Some(tags) = tags else { continue };
        if tags.len() > max_tags {
            issues.push(ValidationIssue::new(
                &["body", field],
                "too_long",
                format!("List should have at most {max_tags} items"),
            ));
        }
        for (i, tag) in tags.iter().enumerate() {
            if tag.chars().count() > MAX_TAG_CHARS {
                issues.push(
                    ValidationIssue::new(
                        &["body", field],
                        "string_too_long",
                        format!("String should have at most {MAX_TAG_CHARS} characters"),
                    )
                    .at(i),
                );
            }
        }
    }
    for (field, text) in [
        ("timezone", update.timezone.as_ref()),
        (
            "quiet_hours_start",
            update.quiet_hours_start.as_ref().and_then(Option::as_ref),
        ),
        (
            "quiet_hours_end",
            update.quiet_hours_end.as_ref().and_then(Option::as_ref),
        ),
    ] {
        if text.is_some_and(|t| t.chars().count() > MAX_TAG_CHARS) {
            issues.push(ValidationIssue::new(
                &["body", field],
                "string_too_long",
                format!("String should have at most {MAX_TAG_CHARS} characters"),
            ));
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    if let Some(Some(url)) = &update.webhook_url {
        if let Err(issue) = check_url("webhook_url", url, "https://", "^https://", allow_insecure) {
            issues.push(issue);
        }
    }
    if let Some(Some(url)) = &update.slack_webhook {
        let pattern = r"^https://hooks\.slack\.com/";
        if let Err(issue) = check_url(
            "slack_webhook",
            url,
            "https://hooks.slack.com/",
            pattern,
            allow_insecure,
        ) {
            issues.push(issue);
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    s.enabled = update.enabled;
    if let Some(v) = update.severities {
        s.severities = v;
    }
    if let Some(v) = update.include_tags {
        s.include_tags = v;
    }
    if let Some(v) = update.exclude_tags {
        s.exclude_tags = v;
    }
    if let Some(v) = update.webhook_url {
        s.webhook_url = v;
    }
    if let Some(v) = update.slack_webhook {
        s.slack_webhook = v;
    }
    if let Some(v) = update.quiet_hours_enabled {
        s.quiet_hours_enabled = v;
    }
    if let Some(v) = update.quiet_hours_start {
        s.quiet_hours_start = v;
    }
    if let Some(v) = update.quiet_hours_end {
        s.quiet_hours_end = v;
    }
    if let Some(v) = update.timezone {
        s.timezone = v;
    }
    if let Some(v) = update.batch_interval_minutes {
        s.batch_interval_minutes = v;
    }
    if s.enabled && s.channel != NotificationChannel::InApp && s.target_url().is_none() {
        let field = match s.channel {
            NotificationChannel::Slack => "slack_webhook",
            _ => "webhook_url",
        };
        return Err(ApiError::Validation(vec![required_url(field, s.channel)]));
    }
    if s.channel == NotificationChannel::Webhook
        && s.webhook_url.is_some()
        && s.webhook_secret.is_none()
    {
        s.webhook_secret = Some(new_secret()?);
    }
    s.updated_at = integr8s_core::now();
    Ok(s)
}

/// The contract's `SubscriptionsResponse`: one entry per channel.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SubscriptionsResponse {
    pub subscriptions: Vec<Subscription>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<SubscriptionsResponse>, ApiError> {
    let stored = state.store.subscriptions(&user.user_id).await?;
    let subscriptions = effective_subscriptions(stored, &user.user_id);
    Ok(Json(SubscriptionsResponse { subscriptions }))
}

pub(super) async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(channel): AppPath<String>,
    AppJson(body): AppJson<SubscriptionUpdate>,
) -> Result<Json<Subscription>, ApiError> {
    let channel = parse_channel(&channel)?;
    let stored = state.store.subscriptions(&user.user_id).await?;
    let current = effective_subscriptions(stored, &user.user_id)
        .into_iter()
        .find(|s| s.channel == channel)
        .unwrap_or_else(|| Subscription::default_for(&user.user_id, channel));
    let next = apply(
        current,
        body,
        state.config.allow_insecure_webhooks,
        state.config.quotas.max_subscription_tags,
    )?;
    let saved = state.store.save_subscription(&next).await?;
    Ok(Json(saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_http_is_recognised_strictly() {
        assert!(is_loopback_http("http://127.0.0.1:8080/hook"));
        assert!(is_loopback_http("http://localhost/hook"));
        assert!(is_loopback_http("http://[::1]:9000/x"));
        assert!(!is_loopback_http("http://127.0.0.1@evil.example/"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.example/"));
        assert!(!is_loopback_http("https://127.0.0.1/"));
        assert!(!is_loopback_http("http://10.0.0.1/"));
    }

    #[test]
    fn urls_follow_the_contract_patterns() {
        let https =
            |u: &str, insecure| check_url("webhook_url", u, "https://", "^https://", insecure);
        assert!(https("https://example.com/hook", false).is_ok());
        assert!(https("http://example.com/hook", false).is_err());
        assert!(https("http://127.0.0.1:1/hook", false).is_err());
        assert!(https("http://127.0.0.1:1/hook", true).is_ok());
        assert!(https("https://exa mple.com", false).is_err());
    }
}
