//! Notifications: what a user is told (in the in-app inbox, by webhook, on Slack), the per-channel
//! subscriptions that filter it, and the outbound delivery attempts of the external channels.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where a notification is delivered.
    NotificationChannel { InApp => "in_app", Webhook => "webhook", Slack => "slack" }
}

string_enum! {
    /// How important a notification is.
    NotificationSeverity { Low => "low", Medium => "medium", High => "high", Urgent => "urgent" }
}

string_enum! {
    /// The state of a notification (or of one delivery attempt series).
    NotificationStatus {
        Pending => "pending",
        Queued => "queued",
        Sending => "sending",
        Delivered => "delivered",
        Failed => "failed",
        Skipped => "skipped",
        Read => "read",
        Clicked => "clicked",
    }
}

/// A stored notification: one per event worth telling the user about. Its `channel` is always
/// `in_app` (the inbox entry); deliveries to the external channels are [`NotificationDelivery`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub user_id: String,
    pub channel: NotificationChannel,
    pub severity: NotificationSeverity,
    /// `delivered` once in the inbox (and unread), `read` after the user read it, `skipped` when
    /// the user's in-app subscription filtered it out.
    pub status: NotificationStatus,
    pub subject: String,
    pub body: String,
    pub action_url: Option<String>,
    pub tags: Vec<String>,
    /// Makes creation idempotent: at most one notification per (user, key).
    pub dedup_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Filters and paging for listing one user's notifications (newest first).
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub user_id: String,
    pub status: Option<NotificationStatus>,
    /// Only notifications having at least one of these tags (empty: no constraint).
    pub include_tags: Vec<String>,
    /// Only notifications having none of these tags.
    pub exclude_tags: Vec<String>,
    /// Only notifications having a tag that starts with this prefix.
    pub tag_prefix: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// A user's preferences for one channel. Users without a stored subscription get
/// [`Subscription::default_for`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Subscription {
    pub user_id: String,
    pub channel: NotificationChannel,
    pub enabled: bool,
    /// Severities delivered on this channel; empty means all.
    pub severities: Vec<NotificationSeverity>,
    /// When not empty, only notifications having one of these tags are delivered.
    pub include_tags: Vec<String>,
    /// Notifications having one of these tags are not delivered.
    pub exclude_tags: Vec<String>,
    pub webhook_url: Option<String>,
    pub slack_webhook: Option<String>,
    /// The HMAC key signing webhook bodies (webhook channel only).
    pub webhook_secret: Option<String>,
    pub quiet_hours_enabled: bool,
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
    pub timezone: String,
    pub batch_interval_minutes: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// The subscription a user has before changing anything: enabled, no filters, no URL.
    pub fn default_for(user_id: &str, channel: NotificationChannel) -> Self {
        let now = crate::now();
        Self {
            user_id: user_id.to_owned(),
            channel,
            enabled: true,
            severities: Vec::new(),
            include_tags: Vec::new(),
            exclude_tags: Vec::new(),
            webhook_url: None,
            slack_webhook: None,
            webhook_secret: None,
            quiet_hours_enabled: false,
            quiet_hours_start: None,
            quiet_hours_end: None,
            timezone: "UTC".to_owned(),
            batch_interval_minutes: 60,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether this subscription lets `severity`/`tags` through (enabled, severity listed or
    /// no severity list, an included tag when tags are included, no excluded tag).
    pub fn accepts(&self, severity: NotificationSeverity, tags: &[String]) -> bool {
        self.enabled
            && (self.severities.is_empty() || self.severities.contains(&severity))
            && (self.include_tags.is_empty() || tags.iter().any(|t| self.include_tags.contains(t)))
            && !tags.iter().any(|t| self.exclude_tags.contains(t))
    }

    /// The outbound URL of this channel, if it has one.
    pub fn target_url(&self) -> Option<&str> {
        match self.channel {
            NotificationChannel::InApp => None,
            NotificationChannel::Webhook => self.webhook_url.as_deref(),
            NotificationChannel::Slack => self.slack_webhook.as_deref(),
        }
    }
}

/// The user's subscription for every channel (in [`NotificationChannel::ALL`] order), the
/// default for each channel never saved.
pub fn effective_subscriptions(stored: Vec<Subscription>, user_id: &str) -> Vec<Subscription> {
    NotificationChannel::ALL
        .iter()
        .map(|&channel| {
            stored
                .iter()
                .find(|s| s.channel == channel)
                .cloned()
                .unwrap_or_else(|| Subscription::default_for(user_id, channel))
        })
        .collect()
}

/// One notification's delivery to one external channel (webhook or Slack), retried with
/// back-off until delivered or out of attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationDelivery {
    pub notification_id: String,
    pub channel: NotificationChannel,
    pub user_id: String,
    /// `pending` (waiting for `next_attempt_at`), `sending` (claimed by a worker until
    /// `next_attempt_at`), `delivered` or `failed`.
    pub status: NotificationStatus,
    pub target_url: String,
    /// Signing key (webhooks).
    pub secret: Option<String>,
    /// Attempts started so far (a claim counts as an attempt).
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Per-(user, severity) creation cap: at most `max` notifications created since `since`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub max: u32,
    pub since: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for c in NotificationChannel::ALL {
            assert_eq!(NotificationChannel::parse(c.as_str()), Some(*c));
        }
        for s in NotificationStatus::ALL {
            assert_eq!(NotificationStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(
            serde_json::to_string(&NotificationChannel::InApp).unwrap(),
            "\"in_app\""
        );
    }

    #[test]
    fn subscription_filter() {
        let tags = vec!["execution".to_owned(), "failed".to_owned()];
        let mut s = Subscription::default_for("u", NotificationChannel::InApp);
        assert!(s.accepts(NotificationSeverity::High, &tags));
        s.severities = vec![NotificationSeverity::Low];
        assert!(!s.accepts(NotificationSeverity::High, &tags));
        s.severities.clear();
        s.include_tags = vec!["completed".to_owned()];
        assert!(!s.accepts(NotificationSeverity::High, &tags));
        s.include_tags = vec!["failed".to_owned()];
        assert!(s.accepts(NotificationSeverity::High, &tags));
        s.exclude_tags = vec!["execution".to_owned()];
        assert!(!s.accepts(NotificationSeverity::High, &tags));
        s.exclude_tags.clear();
        s.enabled = false;
        assert!(!s.accepts(NotificationSeverity::High, &tags));
    }
}
