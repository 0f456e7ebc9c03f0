//! Outbound requests of the external channels: the webhook body and its signature, and the
//! Slack message.
//!
//! Webhook receivers verify `X-Integr8s-Signature: sha256=<hex>`, the HMAC-SHA256 under the
//! subscription's secret of `"<X-Integr8s-Timestamp>.<raw body>"`, and should refuse old
//! timestamps (replays).

use hmac::{Hmac, Mac};
use integr8s_core::notification::{Notification, NotificationChannel, NotificationSeverity};
use serde_json::{json, Value};
use sha2::Sha256;

/// Header carrying `sha256=<hex hmac>`.
pub const SIGNATURE_HEADER: &str = "x-integr8s-signature";
/// Header carrying the unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-integr8s-timestamp";

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook body: `{notification_id, severity, tags, subject, body, timestamp, action_url?}`.
pub(crate) fn webhook_body(n: &Notification) -> Value {
    let mut body = json!({
        "notification_id": n.notification_id,
        "severity": n.severity,
        "tags": n.tags,
        "subject": n.subject,
        "body": n.body,
        "timestamp": n.created_at,
    });
    if let (Some(url), Some(map)) = (&n.action_url, body.as_object_mut()) {
        map.insert("action_url".to_owned(), Value::from(url.clone()));
    }
    body
}

fn slack_color(severity: NotificationSeverity) -> &'static str {
    match severity {
        NotificationSeverity::Low => "#36a64f",
        NotificationSeverity::Medium => "#ff9900",
        NotificationSeverity::High => "#ff0000",
        NotificationSeverity::Urgent => "#990000",
    }
}

/// The Slack incoming-webhook message.
pub(crate) fn slack_body(n: &Notification) -> Value {
    let mut attachment = json!({
        "color": slack_color(n.severity),
        "text": n.body,
        "footer": "Integr8sCode Notifications",
        "ts": n.created_at.timestamp(),
    });
    if let (Some(url), Some(map)) = (&n.action_url, attachment.as_object_mut()) {
        map.insert(
            "actions".to_owned(),
            json!([{"type": "button", "text": "View Details", "url": url}]),
        );
    }
    json!({"text": n.subject, "attachments": [attachment]})
}

/// Sends `n` to `url` for `channel`. `Err` carries a short reason for the delivery record.
pub(crate) async fn send(
    client: &reqwest::Client,
    channel: NotificationChannel,
    url: &str,
    secret: Option<&str>,
    n: &Notification,
) -> Result<(), String> {
    let body = match channel {
        NotificationChannel::Slack => slack_body(n),
        NotificationChannel::Webhook | NotificationChannel::InApp => webhook_body(n),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| format!("encoding the body: {e}"))?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "integr8s-notifications");
    if channel == NotificationChannel::Webhook {
        let timestamp = integr8s_core::now().timestamp();
        let signature = sign_webhook(secret.unwrap_or_default().as_bytes(), timestamp, &bytes);
        request = request
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature);
    }
    let response = request.body(bytes).send().await.map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// A one-line cause without the URL (which may carry a Slack token).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "request failed"
    };
    let e = e.without_url();
    format!("{kind}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: HMAC-SHA256("key", "1700000000.{\"a\":1}").
        let expected = "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03";
        assert_eq!(sign_webhook(b"key", 1_700_000_000, br#"{"a":1}"#), expected);
        assert_ne!(sign_webhook(b"key", 1_700_000_001, br#"{"a":1}"#), expected);
        assert_ne!(
            sign_webhook(b"other", 1_700_000_000, br#"{"a":1}"#),
            expected
        );
    }
}
