//! Settings shared by the pipeline components.

use std::time::Duration;

use integr8s_core::ports::QueuePolicy;
use integr8s_core::system_settings::SystemSettings;

/// Configuration of the pipeline components.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// How the coordinator picks the next queued execution (global and per-user caps, ageing).
    pub queue: QueuePolicy,
    /// The coordinator's safety tick: dispatch runs at least this often even without events.
    pub tick: Duration,
    /// A delivery whose handler failed this many times is logged and acknowledged.
    pub max_handler_attempts: u32,
    /// A queue claim whose execution is still `queued` this long after the claim was taken
    /// belongs to a dispatch that stopped (a live one schedules within moments): any
    /// coordinator hands it back to the queue.
    pub claim_timeout: Duration,
}

impl EngineConfig {
    /// The system settings that apply while none are stored, as far as the pipeline reads
    /// them: the queue's global cap. The server derives its defaults from the whole
    /// configuration instead; this is for a pipeline assembled on its own (tests, tools).
    pub fn settings_defaults(&self) -> SystemSettings {
        SystemSettings {
            max_concurrent_executions: self.queue.max_active,
            ..SystemSettings::default()
        }
    }
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
            claim_timeout: Duration::from_secs(30),
        }
    }
}

/// Identity and lease of one local worker instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Unique among the workers sharing a store; a worker restarted with the same id recovers
    /// the runs it owned. See [`WorkerConfig::generated_id`].
    pub id: String,
    /// How often the lease is renewed (and lost runs of other workers are looked for).
    pub heartbeat: Duration,
    /// How long a lease lasts after each renewal: a worker silent this long is lost, and its
    /// runs are settled by another. Several heartbeats long.
    pub lease: Duration,
    /// How often the store is read for cancels the bus's live fan-out may have missed.
    pub cancel_poll: Duration,
}

impl WorkerConfig {
    /// `<hostname>-<pid>-<random>`: unique per process start.
    pub fn generated_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        let random: String = integr8s_core::new_id()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        format!("{host}-{}-{random}", std::process::id())
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: Self::generated_id(),
            heartbeat: Duration::from_secs(3),
            lease: Duration::from_secs(15),
            cancel_poll: Duration::from_millis(500),
        }
    }
}
