//! Notifications: the service that turns finished executions into notifications (in-app inbox
//! plus webhook/Slack deliveries), and the delivery worker that sends the external ones with
//! signed bodies, persisted retries with exponential back-off, and the dead-letter queue.
//!
//! Both are stateless apart from the store: throttling, retry counts and due times live in the
//! database, so restarts and several processes keep the same limits and lose no retry.

mod content;
mod delivery;
mod http;
mod service;
pub mod target;

use std::time::Duration;

pub use delivery::DeliveryWorker;
pub use http::{sign_webhook, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use service::NotificationService;

/// The consumer group of the notification service.
pub const NOTIFICATION_GROUP: &str = "notification-service";
/// The group under which failed deliveries are dead-lettered and redelivered from the DLQ.
pub const DELIVERY_GROUP: &str = "notification-delivery";

/// Per-(user, severity) cap on notification creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// At most this many notifications of one severity per user within `window`.
    pub max_per_window: u32,
    pub window: Duration,
}

/// Settings of the notification service and the delivery worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfig {
    /// `None` disables throttling.
    pub throttle: Option<ThrottleConfig>,
    /// Attempts per external delivery before it fails and is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled per attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Timeout of one outbound HTTP request.
    pub http_timeout: Duration,
    /// How often the worker looks for due deliveries when nothing wakes it.
    pub poll_interval: Duration,
    /// Deliveries claimed and sent at once.
    pub batch: u32,
    /// Whether webhook and Slack deliveries may go to loopback, private and other non-public
    /// addresses (testing only; see [`target`]).
    pub allow_private_targets: bool,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            throttle: Some(ThrottleConfig {
                max_per_window: 5,
                window: Duration::from_secs(3600),
            }),
            max_attempts: 5,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(30),
            http_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            batch: 16,
            allow_private_targets: false,
        }
    }
}

impl NotificationConfig {
    /// The delay after failed attempt number `attempt` (1-based): base · 2^(attempt-1), capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.retry_base.saturating_mul(factor).min(self.retry_cap)
    }

    /// How long a claimed delivery stays with its worker before another may take it over.
    pub(crate) fn lease(&self) -> Duration {
        self.http_timeout.saturating_add(Duration::from_secs(30))
    }
}

/// Why a notification component could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = NotificationConfig::default();
        let secs: Vec<u64> = (1..=7).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(c.backoff(1000), c.retry_cap);
    }
}
