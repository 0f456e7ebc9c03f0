//! Store port: Notifications, their per-channel subscriptions and their outbound deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::event::{Envelope, StoredEvent};
use crate::notification::{
    Notification, NotificationChannel, NotificationDelivery, NotificationFilter, Subscription,
    Throttle,
};

/// The result of [`NotificationStore::create_notification`].
// One value per creation; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateNotification {
    /// Stored with its deliveries and its event (to be published by the caller).
    Created(Notification, StoredEvent),
    /// The user already has a notification with the same dedup key; nothing was stored.
    Existing(Notification),
    /// The throttle's cap was reached; nothing was stored.
    Throttled,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered {
        at: DateTime<Utc>,
    },
    /// Back to `pending`, due again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up: `failed`.
    Failed {
        at: DateTime<Utc>,
        error: String,
    },
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores a notification, its pending external `deliveries` and its `notification_created`
    /// event in one transaction. Idempotent on `(user_id, dedup_key)`: an existing notification
    /// is returned as `Existing` (checked before the throttle). With a `throttle`, creation is
    /// refused (`Throttled`) when the user already has `max` notifications of the same severity
    /// created at or after `since` — counted in the store, so the cap holds across processes.
    async fn create_notification(
        &self,
        notification: &Notification,
        deliveries: &[NotificationDelivery],
        created: &Envelope,
        throttle: Option<Throttle>,
    ) -> Result<CreateNotification, StoreError>;

    async fn notification(&self, notification_id: &str)
        -> Result<Option<Notification>, StoreError>;

    /// One user's notifications, newest `created_at` first, with the total before paging.
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> Result<(Vec<Notification>, u64), StoreError>;

    /// In-app notifications in the user's inbox not read yet (status `delivered`).
    async fn unread_notifications(&self, user_id: &str) -> Result<u64, StoreError>;

    /// Marks one of the user's notifications read (`read_at`, and status `read` if it was
    /// `delivered`). Returns whether the user has it (already read counts as found).
    async fn mark_notification_read(
        &self,
        user_id: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Marks every unread notification of the user read. Returns how many changed.
    async fn mark_all_notifications_read(
        &self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Deletes one of the user's notifications with its deliveries. Returns whether it existed.
    async fn delete_notification(
        &self,
        user_id: &str,
        notification_id: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes all of a user's notifications, deliveries and subscriptions. Returns the number
    /// of notifications deleted.
    async fn delete_user_notifications(&self, user_id: &str) -> Result<u64, StoreError>;

    /// The user's stored subscriptions (channels never saved are absent).
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>, StoreError>;

    /// Inserts or replaces the (user, channel) subscription; an existing one keeps its
    /// `created_at`. Returns the stored value.
    async fn save_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Subscription, StoreError>;

    /// Atomically claims up to `limit` deliveries that are due at `now` (`pending`, or
    /// `sending` whose previous claim expired): each becomes `sending` until `lease_until`,
    /// with `attempts` increased by one. A delivery is never handed to two claimers at once.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationDelivery>, StoreError>;

    /// Settles the claimed attempt number `attempt` of a delivery. Ignored (returns false) when
    /// the delivery is gone or was claimed again since (a stale worker).
    async fn finish_delivery(
        &self,
        notification_id: &str,
        channel: NotificationChannel,
        attempt: u32,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError>;

    /// Gives the `failed` deliveries of a notification a new series of attempts: `pending`,
    /// attempts 0, due at `at` (a retry requested from the dead-letter queue). Returns how many.
    async fn reopen_failed_deliveries(
        &self,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// The deliveries of one notification.
    async fn deliveries(
        &self,
        notification_id: &str,
    ) -> Result<Vec<NotificationDelivery>, StoreError>;
}
