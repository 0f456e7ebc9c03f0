//! `[telemetry]`: OTLP trace export and how often the stored system settings are applied.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The standard variable of OpenTelemetry SDKs, honoured when `telemetry.otlp_endpoint` is
/// empty.
pub const OTEL_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// OTLP/HTTP base URL; empty: no traces (unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
    pub otlp_endpoint: String,
    /// `service.name`; empty: derived from the roles of the process.
    pub service_name: String,
    /// Share of new traces sampled while no system settings are stored.
    #[serde(deserialize_with = "number")]
    pub sampling_rate: f64,
    /// How often the stored system settings (`log_level`, `enable_tracing`, `sampling_rate`)
    /// are read and applied.
    pub settings_poll_ms: u64,
}

impl TelemetrySection {
    pub fn settings_poll(&self) -> Duration {
        Duration::from_millis(self.settings_poll_ms)
    }

    /// Takes the standard endpoint variable when no endpoint is configured.
    pub(super) fn adopt_standard_env(&mut self, env: &std::collections::HashMap<String, String>) {
        if self.otlp_endpoint.is_empty() {
            if let Some(v) = env.get(OTEL_ENDPOINT_VAR).filter(|v| !v.trim().is_empty()) {
                self.otlp_endpoint = v.trim().to_owned();
            }
        }
    }

    pub(super) fn validate(
        &self,
        check: &dyn Fn(bool, &str, &str) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let endpoint = &self.otlp_endpoint;
        check(
            endpoint.is_empty()
                || ((endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                    && endpoint.parse::<reqwest::Url>().is_ok()),
            "telemetry.otlp_endpoint",
            "expected an http:// or https:// URL such as http://otel-collector:4318, or empty",
        )?;
        check(
            (0.0..=1.0).contains(&self.sampling_rate),
            "telemetry.sampling_rate",
            "must be between 0 and 1",
        )?;
        check(
            (50..=600_000).contains(&self.settings_poll_ms),
            "telemetry.settings_poll_ms",
            "must be between 50 and 600000",
        )?;
        check(
            self.service_name.len() <= 200,
            "telemetry.service_name",
            "must be at most 200 characters",
        )
    }
}

/// A number given in TOML, or as a string from the environment.
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Float(f64),
        Int(i64),
        Text(String),
    }
    match Num::deserialize(d)? {
        Num::Float(f) => Ok(f),
        Num::Int(i) => Ok(i as f64),
        Num::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}
