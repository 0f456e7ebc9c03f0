//! The process's `tracing` subscriber: log lines on stderr (text or JSON, secrets redacted, JSON
//! lines with the `trace_id`/`span_id` of their span), a log level that the stored system
//! settings can change at runtime, and, when an OTLP endpoint is configured, the trace exporter.

mod json;
pub mod redact;
pub mod settings;

use integr8s_core::system_settings::LogLevel;
use integr8s_telemetry::trace::export::{ExportSettings, TraceExport};
use integr8s_telemetry::trace::SamplingControl;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info";

/// Handles on the installed subscriber.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    export: Option<TraceExport>,
}

impl Logging {
    /// Installs the subscriber: log lines on stderr, plus the trace exporter when `export` is
    /// given (call it inside the Tokio runtime). An exporter that cannot start is reported and
    /// left out; logs still work.
    pub fn init(json: bool, settings: Option<&ExportSettings>) -> Self {
        let initial =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let (filter, handle) = reload::Layer::new(initial);
        let fmt = tracing_subscriber::fmt::layer().with_writer(redact::RedactingStderr);
        let fmt = if json {
            fmt.json()
                .event_format(json::JsonWithTrace::default())
                .with_filter(filter)
                .boxed()
        } else {
            fmt.with_filter(filter).boxed()
        };
        let (export, export_error) = match settings.map(integr8s_telemetry::trace::export::install)
        {
            Some(Ok(export)) => (Some(export), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        // Spans of INFO and above become OpenTelemetry spans, whatever the log level.
        let otel = export
            .as_ref()
            .map(|e| e.layer().with_filter(LevelFilter::INFO));
        tracing_subscriber::registry().with(fmt).with(otel).init();
        if let Some(e) = export_error {
            tracing::error!(error = %e, "traces are not exported");
        }
        if let (Some(settings), Some(_)) = (settings, &export) {
            tracing::info!(
                endpoint = %redact::redact(&settings.endpoint),
                service = %settings.service_name,
                "exporting traces over OTLP/HTTP"
            );
        }
        Self {
            filter: handle,
            export,
        }
    }

    /// Sets the log level of integr8s's own lines (libraries stay at `info` at most).
    pub fn set_level(&self, level: LogLevel) {
        let directives = directives(level);
        match EnvFilter::try_new(&directives) {
            Ok(filter) => {
                if let Err(e) = self.filter.reload(filter) {
                    tracing::warn!(error = %e, "log level not changed");
                } else if matches!(level, LogLevel::Debug | LogLevel::Info) {
                    tracing::info!(filter = %directives, "log level changed");
                } else {
                    // Written at the new level, so the change shows in the log it affects.
                    tracing::warn!(filter = %directives, "log level changed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "log level not changed"),
        }
    }

    /// The sampler's switch and rate, when traces are exported.
    pub fn sampling(&self) -> Option<SamplingControl> {
        self.export.as_ref().map(TraceExport::control)
    }

    /// Sends the spans still buffered; call once before the process exits.
    pub fn shutdown(&self) {
        if let Some(export) = &self.export {
            export.shutdown();
        }
    }
}

/// The filter of a stored `log_level`: that level for integr8s's crates, and for the libraries
/// the same level but never more verbose than `info`.
fn directives(level: LogLevel) -> String {
    let (ours, libraries) = match level {
        LogLevel::Debug => ("debug", "info"),
        LogLevel::Info => ("info", "info"),
        LogLevel::Warning => ("warn", "warn"),
        LogLevel::Error | LogLevel::Critical => ("error", "error"),
    };
    format!("{libraries},integr8s={ours}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_levels_map_to_filters() {
        assert_eq!(directives(LogLevel::Debug), "info,integr8s=debug");
        assert_eq!(directives(LogLevel::Warning), "warn,integr8s=warn");
        assert_eq!(directives(LogLevel::Critical), "error,integr8s=error");
        for level in [LogLevel::Debug, LogLevel::Info, LogLevel::Error] {
            assert!(EnvFilter::try_new(directives(level)).is_ok());
        }
    }
}
