//! The one home of the settings in force: the stored system settings when an admin saved some,
//! else the defaults the server was configured with, and the hard bounds every role checks a
//! run against. The API, the coordinator and the log/trace watcher all read through
//! [`EffectiveSettings`]; the saga checks the same bounds the API enforces.

use std::sync::Arc;

use crate::ports::{QueuePolicy, SystemSettingsStore};
use crate::system_settings::SystemSettings;
use crate::StoreError;

/// Longest run timeout anyone may set (the top of the contract's `max_timeout_seconds` range).
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Longest script a submission may carry, in characters (the contract's limit).
pub const MAX_SCRIPT_CHARS: usize = 50_000;

/// Longest script in bytes: [`MAX_SCRIPT_CHARS`] characters of at most four UTF-8 bytes each.
pub const MAX_SCRIPT_BYTES: usize = MAX_SCRIPT_CHARS * 4;

/// The settings in force, read from the store on every call (so a change applies at once,
/// in every process sharing the store).
#[derive(Clone)]
pub struct EffectiveSettings {
    store: Arc<dyn SystemSettingsStore>,
    defaults: Arc<SystemSettings>,
}

impl EffectiveSettings {
    /// `defaults` are what applies while nothing is stored: the server's configuration.
    pub fn new(store: Arc<dyn SystemSettingsStore>, defaults: SystemSettings) -> Self {
        Self {
            store,
            defaults: Arc::new(defaults),
        }
    }

    /// What applies while nothing is stored (and after a reset).
    pub fn defaults(&self) -> &SystemSettings {
        &self.defaults
    }

    /// The stored document, if an admin saved one.
    pub async fn stored(&self) -> Result<Option<SystemSettings>, StoreError> {
        self.store.system_settings().await
    }

    /// The settings in force.
    pub async fn current(&self) -> Result<SystemSettings, StoreError> {
        Ok(match self.stored().await? {
            Some(stored) => stored,
            None => SystemSettings::clone(&self.defaults),
        })
    }

    /// The coordinator's queue policy: `base` with the global cap taken from the settings in
    /// force (`max_concurrent_executions`, at least 1).
    pub async fn queue_policy(&self, base: QueuePolicy) -> Result<QueuePolicy, StoreError> {
        let settings = self.current().await?;
        Ok(QueuePolicy {
            max_active: settings.max_concurrent_executions.max(1),
            ..base
        })
    }
}

impl std::fmt::Debug for EffectiveSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectiveSettings")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}
