//! Applies the monitoring fields of the stored system settings to this process: `log_level` to
//! the log filter, `enable_tracing` and `sampling_rate` to the trace sampler. Every process
//! reads the store on its own (`telemetry.settings_poll_ms`), so a change made through any API
//! process reaches every role. `metrics_retention_days` is accepted and stored only: Prometheus,
//! not integr8s, keeps the series.

use std::sync::Arc;
use std::time::Duration;

use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::system_settings::{LogLevel, SystemSettings};
use tokio_util::sync::CancellationToken;

use super::Logging;

/// What was last applied, so that only changes touch the filter and the sampler.
#[derive(Debug, Clone, PartialEq)]
struct Applied {
    log_level: LogLevel,
    enable_tracing: bool,
    sampling_rate: f64,
}

impl From<&SystemSettings> for Applied {
    fn from(s: &SystemSettings) -> Self {
        Self {
            log_level: s.log_level,
            enable_tracing: s.enable_tracing,
            sampling_rate: s.sampling_rate,
        }
    }
}

/// Polls the stored settings every `every` until `shutdown`. Until settings are stored the
/// configuration's level (`RUST_LOG`) and sampling rate stay in force; a reset (no stored
/// settings any more) keeps what was last applied until the next save.
pub async fn watch(
    settings: EffectiveSettings,
    logging: Arc<Logging>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last: Option<Applied> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stored = match settings.stored().await {
            Ok(Some(stored)) => Applied::from(&stored),
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "system settings not read");
                continue;
            }
        };
        if last.as_ref() == Some(&stored) {
            continue;
        }
        // Sampling first: its line is written at the level in force before the change.
        if let Some(sampling) = logging.sampling() {
            sampling.set_enabled(stored.enable_tracing);
            sampling.set_rate(stored.sampling_rate);
            tracing::info!(
                enable_tracing = stored.enable_tracing,
                sampling_rate = stored.sampling_rate,
                "trace sampling changed"
            );
        }
        if last.as_ref().map(|l| l.log_level) != Some(stored.log_level) {
            logging.set_level(stored.log_level);
        }
        last = Some(stored);
    }
}
