//! SQLite: event-sourced user settings.

use async_trait::async_trait;
use integr8s_core::ports::UserSettingsStore;

use super::SqliteStore;

#[async_trait]
impl UserSettingsStore for SqliteStore {}
