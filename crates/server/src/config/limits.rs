//! The `[quotas]`, `[retention]` and `[streams]` sections: what one user may keep and queue,
//! how long stored rows live, and the limits of the event streams.

use std::time::Duration;

use integr8s_core::ports::RetentionKind;
use integr8s_engine::retention::RetentionConfig;
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasSection {
    pub max_saved_scripts: u64,
    pub max_saved_script_bytes: u64,
    pub max_custom_settings: u64,
    pub max_custom_setting_bytes: u64,
    pub max_subscription_tags: u64,
    pub max_pending_per_user: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(deserialize_with = "age_text")]
    pub events: String,
    #[serde(deserialize_with = "age_text")]
    pub executions: String,
    #[serde(deserialize_with = "age_text")]
    pub notifications: String,
    #[serde(deserialize_with = "age_text")]
    pub audit: String,
    #[serde(deserialize_with = "age_text")]
    pub replay_sessions: String,
    #[serde(deserialize_with = "age_text")]
    pub dlq: String,
    #[serde(deserialize_with = "age_text")]
    pub sweep_interval: String,
}

/// An age as written: a string such as "30d", or a bare number (`0`, or `30` that
/// [`parse_age`] then refuses for its missing unit).
fn age_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Age {
        Text(String),
        Number(i64),
    }
    Ok(match Age::deserialize(d)? {
        Age::Text(t) => t,
        Age::Number(n) => n.to_string(),
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsSection {
    pub max_open: u64,
    pub max_open_per_user: u64,
    pub notification_lifetime_seconds: u64,
    pub buffer_frames: u64,
    pub catch_up_ms: u64,
}

/// Parses an age such as `30d`, `12h`, `15m` or `90s`; `0` (or empty) is `None`: kept for ever.
pub fn parse_age(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t.is_empty() || t == "0" {
        return Ok(None);
    }
    let (number, unit) = t.split_at(t.len() - 1);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("expected a number and a unit (s, m, h or d), such as 30d, or 0 to keep for ever; got {text:?}")),
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("expected a whole number before the unit, such as 30d; got {text:?}")
    })?;
    Ok((n > 0).then(|| Duration::from_secs(n.saturating_mul(seconds))))
}

impl RetentionSection {
    /// The ages of the kinds the retention sweeper deletes.
    fn ages(&self) -> [(&'static str, RetentionKind, &str); 5] {
        [
            ("retention.events", RetentionKind::Events, &self.events),
            (
                "retention.executions",
                RetentionKind::Executions,
                &self.executions,
            ),
            (
                "retention.notifications",
                RetentionKind::Notifications,
                &self.notifications,
            ),
            ("retention.audit", RetentionKind::Audit, &self.audit),
            (
                "retention.replay_sessions",
                RetentionKind::ReplaySessions,
                &self.replay_sessions,
            ),
        ]
    }

    /// Every age setting with its key: the sweeper's and the DLQ processor's.
    fn age_texts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.ages()
            .into_iter()
            .map(|(key, _, text)| (key, text))
            .chain([("retention.dlq", self.dlq.as_str())])
    }

    /// The sweeper's settings (validated on load).
    pub fn sweeper(&self) -> RetentionConfig {
        let interval = parse_age(&self.sweep_interval)
            .ok()
            .flatten()
            .unwrap_or(Duration::from_secs(3600));
        let mut config = RetentionConfig {
            interval,
            ..RetentionConfig::default()
        };
        for (_, kind, text) in self.ages() {
            config = config.keep(kind, parse_age(text).ok().flatten());
        }
        config
    }

    /// The DLQ's retention, applied by the DLQ processor alone; `None`: kept for ever.
    pub fn dlq_age(&self) -> Option<Duration> {
        parse_age(&self.dlq).ok().flatten()
    }
}

impl QuotasSection {
    pub fn quotas(&self) -> integr8s_api::quotas::Quotas {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        integr8s_api::quotas::Quotas {
            max_saved_scripts: self.max_saved_scripts,
            max_saved_script_bytes: size(self.max_saved_script_bytes),
            max_custom_settings: size(self.max_custom_settings),
            max_custom_setting_bytes: size(self.max_custom_setting_bytes),
            max_subscription_tags: size(self.max_subscription_tags),
            max_pending_per_user: self.max_pending_per_user,
        }
    }
}

impl StreamsSection {
    pub fn limits(&self) -> integr8s_api::streams::StreamLimits {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        integr8s_api::streams::StreamLimits {
            max_open: size(self.max_open),
            max_open_per_user: size(self.max_open_per_user),
            notification_lifetime: Duration::from_secs(self.notification_lifetime_seconds),
            buffer: size(self.buffer_frames),
            catch_up_interval: Duration::from_millis(self.catch_up_ms),
        }
    }
}

pub(super) fn validate(
    quotas: &QuotasSection,
    retention: &RetentionSection,
    streams: &StreamsSection,
    check: &dyn Fn(bool, &str, &str) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    for (key, value) in [
        ("quotas.max_saved_scripts", quotas.max_saved_scripts),
        (
            "quotas.max_saved_script_bytes",
            quotas.max_saved_script_bytes,
        ),
        ("quotas.max_custom_settings", quotas.max_custom_settings),
        (
            "quotas.max_custom_setting_bytes",
            quotas.max_custom_setting_bytes,
        ),
        ("quotas.max_pending_per_user", quotas.max_pending_per_user),
        ("streams.max_open", streams.max_open),
        ("streams.max_open_per_user", streams.max_open_per_user),
        (
            "streams.notification_lifetime_seconds",
            streams.notification_lifetime_seconds,
        ),
        ("streams.buffer_frames", streams.buffer_frames),
    ] {
        check(value >= 1, key, "must be at least 1")?;
    }
    check(
        (100..=60_000).contains(&streams.catch_up_ms),
        "streams.catch_up_ms",
        "must be between 100 and 60000",
    )?;
    for (key, text) in retention.age_texts() {
        if let Err(message) = parse_age(text) {
            check(false, key, &message)?;
        }
    }
    match parse_age(&retention.sweep_interval) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => check(
            false,
            "retention.sweep_interval",
            "must be more than 0, such as 1h",
        ),
        Err(message) => check(false, "retention.sweep_interval", &message),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages_have_units_and_zero_keeps_for_ever() {
        assert_eq!(parse_age("30d"), Ok(Some(Duration::from_secs(30 * 86_400))));
        assert_eq!(parse_age("12h"), Ok(Some(Duration::from_secs(12 * 3600))));
        assert_eq!(parse_age("15m"), Ok(Some(Duration::from_secs(900))));
        assert_eq!(parse_age("90s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_age("0"), Ok(None));
        assert_eq!(parse_age(""), Ok(None));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("1w").is_err());
    }
}
