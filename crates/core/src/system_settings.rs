//! System-wide settings an admin can change at run time (the contract's `SystemSettingsSchema`),
//! and the audit log of those changes.
//!
//! The effective settings are the stored document when there is one, otherwise defaults derived
//! from the server configuration. The pipeline reads them for every new execution, login and
//! dispatch round, so a change applies without a restart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The contract's `LogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

/// The whole settings document. Ranges and patterns are enforced by the API before storing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SystemSettings {
    /// Wall-clock limit of new executions, seconds (1..=3600).
    pub max_timeout_seconds: u64,
    /// Memory limit of new executions, `<n>Ki|Mi|Gi`.
    pub memory_limit: String,
    /// CPU limit of new executions, `<n>m`.
    pub cpu_limit: String,
    /// Executions allowed to hold a slot at once (1..=100).
    pub max_concurrent_executions: u32,
    pub password_min_length: u32,
    /// Lifetime of newly issued sessions.
    pub session_timeout_minutes: u64,
    /// Failed logins after which an account is locked.
    pub max_login_attempts: u32,
    pub lockout_duration_minutes: u64,
    pub metrics_retention_days: u32,
    pub log_level: LogLevel,
    pub enable_tracing: bool,
    pub sampling_rate: f64,
}

impl Default for SystemSettings {
    /// The contract's schema defaults (not the effective defaults, which come from the
    /// server configuration).
    fn default() -> Self {
        Self {
            max_timeout_seconds: 300,
            memory_limit: "512Mi".to_owned(),
            cpu_limit: "2000m".to_owned(),
            max_concurrent_executions: 10,
            password_min_length: 8,
            session_timeout_minutes: 60,
            max_login_attempts: 5,
            lockout_duration_minutes: 15,
            metrics_retention_days: 30,
            log_level: LogLevel::Info,
            enable_tracing: true,
            sampling_rate: 0.1,
        }
    }
}

impl SystemSettings {
    /// The memory limit in bytes, when it is a valid `<n>Ki|Mi|Gi` size.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        parse_memory(&self.memory_limit)
    }
}

/// Parses Kubernetes-style binary sizes: `65536Ki`, `512Mi`, `1Gi`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let (digits, multiplier) = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        .into_iter()
        .find_map(|(unit, m)| s.strip_suffix(unit).map(|d| (d, m)))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SettingsAuditAction {
    SystemSettingsUpdated,
    SystemSettingsReset,
}

impl SettingsAuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemSettingsUpdated => "system_settings_updated",
            Self::SystemSettingsReset => "system_settings_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "system_settings_updated" => Some(Self::SystemSettingsUpdated),
            "system_settings_reset" => Some(Self::SystemSettingsReset),
            _ => None,
        }
    }
}

/// One change of the system settings: who, when, and the effective values before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SettingsAuditEntry {
    pub audit_id: String,
    pub action: SettingsAuditAction,
    pub user_id: String,
    pub username: String,
    pub timestamp: DateTime<Utc>,
    pub old_values: SystemSettings,
    pub new_values: SystemSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_strictly() {
        assert_eq!(parse_memory("512Mi"), Some(512 << 20));
        assert_eq!(parse_memory("1Gi"), Some(1 << 30));
        assert_eq!(parse_memory("64Ki"), Some(64 << 10));
        for bad in ["", "Mi", "512", "512MB", "-1Mi", "1.5Gi", " 1Mi", "éa"] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn log_level_uses_the_contract_spelling() {
        assert_eq!(
            serde_json::to_string(&LogLevel::Warning).unwrap(),
            "\"WARNING\""
        );
    }
}
