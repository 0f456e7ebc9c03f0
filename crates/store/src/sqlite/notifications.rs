//! SQLite: notifications and their subscriptions.

use async_trait::async_trait;
use integr8s_core::ports::NotificationStore;

use super::SqliteStore;

#[async_trait]
impl NotificationStore for SqliteStore {}
