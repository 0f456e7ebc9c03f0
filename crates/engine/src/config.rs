//! Settings shared by the pipeline components.

use std::time::Duration;

use integr8s_core::ports::QueuePolicy;

/// Largest script the saga accepts (the API caps scripts well below this).
pub(crate) const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

/// Largest run timeout the saga accepts: the top of the admin-settable range, so the saga never
/// rejects what the API accepted.
pub(crate) const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Configuration of the pipeline components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// How the coordinator picks the next queued execution (global and per-user caps, ageing).
    pub queue: QueuePolicy,
    /// The coordinator's safety tick: dispatch runs at least this often even without events.
    pub tick: Duration,
    /// A delivery whose handler failed this many times is logged and acknowledged.
    pub max_handler_attempts: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            queue: QueuePolicy {
                max_active: 10,
                max_active_per_user: 10,
                ageing_seconds: 60,
            },
            tick: Duration::from_secs(1),
            max_handler_attempts: 5,
        }
    }
}
