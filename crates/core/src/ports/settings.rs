//! Store port: Event-sourced user settings.

use async_trait::async_trait;

#[async_trait]
pub trait UserSettingsStore: Send + Sync {}
