//! Store port: Notifications and their subscriptions.

use async_trait::async_trait;

#[async_trait]
pub trait NotificationStore: Send + Sync {}
