//! Configuration: embedded defaults, an optional TOML file, `INTEGR8S_*` environment variables
//! and command-line flags, merged in that order and validated into one typed [`Config`].
//!
//! Every error names the key (and where its value came from) so the fix is obvious.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use toml::{Table, Value};

mod bus;
mod limits;
mod telemetry;

pub use bus::BusSection;
pub use limits::{QuotasSection, RetentionSection, StreamsSection};
pub use telemetry::TelemetrySection;

pub const DEFAULTS: &str = include_str!("../integr8s.default.toml");
const ENV_PREFIX: &str = "INTEGR8S_";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown environment variable {var}: no config key '{key}' (keys are INTEGR8S_<SECTION>__<KEY>, e.g. INTEGR8S_SERVER__PORT)")]
    UnknownEnv { var: String, key: String },
    #[error("invalid value for '{key}' (from {source_name}): {message}")]
    Invalid {
        key: String,
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub execution: ExecutionConfig,
    pub sandbox: SandboxSection,
    pub runtimes: RuntimesConfig,
    pub notifications: NotificationsSection,
    pub rate_limit: RateLimitSection,
    pub limiter: LimiterSection,
    pub bus: BusSection,
    pub metrics: MetricsSection,
    pub worker: WorkerSection,
    pub health: HealthSection,
    pub quotas: QuotasSection,
    pub retention: RetentionSection,
    pub streams: StreamsSection,
    /// The Kubernetes executor (roles `k8s-worker`, `pod-monitor`).
    pub k8s: integr8s_k8s::K8sSettings,
    pub telemetry: TelemetrySection,
}

/// `GET /metrics`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Empty: anyone who reaches the port may scrape. Otherwise scrapers send
    /// `Authorization: Bearer <token>`.
    pub token: String,
}

impl MetricsSection {
    /// The token scrapers must send, if one is set.
    pub fn token(&self) -> Option<String> {
        (!self.token.is_empty()).then(|| self.token.clone())
    }
}

impl std::fmt::Debug for MetricsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("MetricsSection")
            .field("token", &token)
            .finish()
    }
}

/// Identity and lease of the local worker (`[worker]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Empty: `<hostname>-<pid>-<random>`, new at every start. A fixed id makes a restarted
    /// worker settle the runs it owned at once instead of after its lease expires.
    pub id: String,
    pub heartbeat_ms: u64,
    pub lease_ms: u64,
}

impl WorkerSection {
    /// The engine's worker settings.
    pub fn engine(&self) -> integr8s_engine::WorkerConfig {
        let defaults = integr8s_engine::WorkerConfig::default();
        integr8s_engine::WorkerConfig {
            id: if self.id.is_empty() {
                defaults.id
            } else {
                self.id.clone()
            },
            heartbeat: std::time::Duration::from_millis(self.heartbeat_ms),
            lease: std::time::Duration::from_millis(self.lease_ms),
            cancel_poll: defaults.cancel_poll,
        }
    }
}

/// The health port of a process that runs only some of the roles (`/health/live`,
/// `/health/ready`); the all-in-one server answers health on the API's port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    pub host: String,
    /// 0: a free port, printed on stdout at start.
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub cookie_secure: bool,
    pub log_format: String,
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub enabled: bool,
}

/// Where rate-limit counters and short-lived keys live.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterSection {
    /// Empty: in this process's memory. Otherwise the Redis shared by every process.
    pub redis_url: String,
    pub key_prefix: String,
}

impl std::fmt::Debug for LimiterSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimiterSection")
            .field(
                "redis_url",
                &integr8s_limiter::redis::redact_url(&self.redis_url),
            )
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// A list given as a TOML array or, from the environment, as a comma-separated string.
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Many(Vec<String>),
        One(String),
    }
    Ok(match List::deserialize(d)? {
        List::Many(v) => v,
        List::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty (SQLite in the data dir), `sqlite://…`, or `postgres://…` / `postgresql://…`.
    pub url: String,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &integr8s_store::redact_url(&self.url))
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub secret: String,
    pub session_timeout_minutes: u64,
    pub max_login_attempts: u32,
    pub lockout_minutes: u64,
    pub password_min_length: usize,
    pub seed_users: bool,
    pub admin_password: String,
    pub user_password: String,
    /// Logins per client address per minute (0: no limit).
    pub login_per_ip_per_minute: u32,
    /// Logins per account per minute, from all addresses (0: no limit).
    pub login_per_account_per_minute: u32,
    /// Registrations per client address per hour (0: no limit).
    pub register_per_ip_per_hour: u32,
    /// Password hashes computed at once; more wait up to `password_hash_wait_ms`, then get 503.
    pub max_concurrent_password_hashes: usize,
    pub password_hash_wait_ms: u64,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("secret", &"<redacted>")
            .field("session_timeout_minutes", &self.session_timeout_minutes)
            .field("max_login_attempts", &self.max_login_attempts)
            .field("lockout_minutes", &self.lockout_minutes)
            .field("password_min_length", &self.password_min_length)
            .field("seed_users", &self.seed_users)
            .field("login_per_ip_per_minute", &self.login_per_ip_per_minute)
            .field(
                "login_per_account_per_minute",
                &self.login_per_account_per_minute,
            )
            .field("register_per_ip_per_hour", &self.register_per_ip_per_hour)
            .field(
                "max_concurrent_password_hashes",
                &self.max_concurrent_password_hashes,
            )
            .field("password_hash_wait_ms", &self.password_hash_wait_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionConfig {
    pub timeout_seconds: u64,
    pub memory_limit: String,
    pub cpu_limit: String,
    pub max_processes: u64,
    pub max_output_bytes: u64,
    pub max_cpu_time_seconds: u64,
    pub max_stdin_bytes: u64,
    pub max_concurrent: u32,
    pub max_per_user: u32,
    pub max_queue_length: u64,
    pub ageing_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    pub bwrap: PathBuf,
    /// First host uid of the sandbox slots (`2 × execution.max_concurrent` uids from here).
    pub uid_base: u32,
    /// Start interpreters ahead of their runs where the registry says how.
    pub prestart: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSection {
    pub allow_insecure_webhooks: bool,
    pub throttle_max_per_window: u32,
    pub throttle_window_seconds: u64,
    pub max_delivery_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimesConfig {
    pub registry_file: String,
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads and validates the configuration from all layers. `env` is passed in so tests never
    /// touch the process environment.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let mut merged: Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: PathBuf::from("<embedded defaults>"),
                    message: e.to_string(),
                })?;
        let mut sources: BTreeMap<String, String> = BTreeMap::new();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let table: Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?;
            let origin = format!("config file {}", path.display());
            for (section, value) in table {
                let Value::Table(keys) = value else {
                    return Err(invalid(&section, &origin, "expected a [section] table"));
                };
                for (key, v) in keys {
                    set_key(&mut merged, &section, &key, v, &origin)?;
                    sources.insert(format!("{section}.{key}"), origin.clone());
                }
            }
        }

        let mut env_vars: Vec<_> = env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        env_vars.sort();
        for (var, raw) in env_vars {
            let rest = &var[ENV_PREFIX.len()..];
            let lower = rest.to_ascii_lowercase();
            let (section, key) = match lower.as_str() {
                "host" | "port" | "data_dir" => ("server".to_owned(), lower.clone()),
                "log" | "log_format" => ("server".to_owned(), "log_format".to_owned()),
                _ => match lower.split_once("__") {
                    Some((s, k)) => (s.to_owned(), k.to_owned()),
                    None => {
                        return Err(ConfigError::UnknownEnv {
                            var: var.clone(),
                            key: lower,
                        })
                    }
                },
            };
            let dotted = format!("{section}.{key}");
            if !has_key(&merged, &section, &key) {
                return Err(ConfigError::UnknownEnv {
                    var: var.clone(),
                    key: dotted,
                });
            }
            set_key(&mut merged, &section, &key, env_value(raw), var)?;
            sources.insert(dotted, var.clone());
        }

        if let Some(h) = &cli.host {
            set_key(
                &mut merged,
                "server",
                "host",
                Value::String(h.clone()),
                "--host",
            )?;
            sources.insert("server.host".into(), "--host".into());
        }
        if let Some(p) = cli.port {
            set_key(
                &mut merged,
                "server",
                "port",
                Value::Integer(p.into()),
                "--port",
            )?;
            sources.insert("server.port".into(), "--port".into());
        }
        if let Some(d) = &cli.data_dir {
            let s = d.to_string_lossy().into_owned();
            set_key(
                &mut merged,
                "server",
                "data_dir",
                Value::String(s),
                "--data-dir",
            )?;
            sources.insert("server.data_dir".into(), "--data-dir".into());
        }

        let source_of = |key: &str| {
            sources
                .get(key)
                .cloned()
                .unwrap_or_else(|| "defaults".into())
        };
        let mut config: Config =
            serde_path_to_error::deserialize(Value::Table(merged)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    source_name: source_of(&key),
                    message: e.inner().to_string(),
                    key,
                }
            })?;
        config.telemetry.adopt_standard_env(env);
        config.validate(&source_of)?;
        Ok(config)
    }

    fn validate(&self, source_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let check = |ok: bool, key: &str, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(key, &source_of(key), msg))
            }
        };
        check(
            self.worker.heartbeat_ms >= 100,
            "worker.heartbeat_ms",
            "must be at least 100",
        )?;
        check(
            self.worker.lease_ms >= 2 * self.worker.heartbeat_ms,
            "worker.lease_ms",
            "must be at least twice worker.heartbeat_ms (a lease outlives a late heartbeat)",
        )?;
        check(
            self.worker.id.len() <= 200 && !self.worker.id.chars().any(char::is_whitespace),
            "worker.id",
            "must be at most 200 characters, without spaces",
        )?;
        check(
            self.sandbox.uid_base >= 1000,
            "sandbox.uid_base",
            "expected an unprivileged host uid of at least 1000 (runs use the uids from here)",
        )?;
        check(
            self.server.host == "localhost" || self.server.host.parse::<IpAddr>().is_ok(),
            "server.host",
            "expected an IP address such as 127.0.0.1 or 0.0.0.0, or localhost",
        )?;
        check(
            !self.server.data_dir.as_os_str().is_empty(),
            "server.data_dir",
            "must not be empty",
        )?;
        check(
            matches!(self.server.log_format.as_str(), "text" | "json"),
            "server.log_format",
            "expected \"text\" or \"json\"",
        )?;
        if !self.database.url.is_empty() {
            if let Err(e) = integr8s_store::Backend::from_url(&self.database.url) {
                return Err(invalid(
                    "database.url",
                    &source_of("database.url"),
                    &e.to_string(),
                ));
            }
        }
        let redis_url = &self.limiter.redis_url;
        let redis_error = (!redis_url.is_empty())
            .then(|| integr8s_limiter::redis::check_url(redis_url).err())
            .flatten();
        check(
            redis_error.is_none(),
            "limiter.redis_url",
            &format!(
                "expected a redis:// or redis+unix:// URL such as redis://127.0.0.1:6379/0, or \
                 empty to keep the limiter in memory ({})",
                redis_error.map_or_else(String::new, |e| e.to_string())
            ),
        )?;
        check(
            self.limiter.key_prefix.len() <= 64
                && !self.limiter.key_prefix.chars().any(char::is_whitespace),
            "limiter.key_prefix",
            "must be at most 64 characters, without spaces",
        )?;
        check(
            self.auth.secret.is_empty() || self.auth.secret.len() >= 32,
            "auth.secret",
            "must be at least 32 characters (or empty to generate one)",
        )?;
        check(
            self.auth.max_concurrent_password_hashes > 0,
            "auth.max_concurrent_password_hashes",
            "must be at least 1",
        )?;
        check(
            self.auth.session_timeout_minutes > 0,
            "auth.session_timeout_minutes",
            "must be positive",
        )?;
        check(
            self.auth.max_login_attempts > 0,
            "auth.max_login_attempts",
            "must be positive",
        )?;
        check(
            self.auth.lockout_minutes > 0,
            "auth.lockout_minutes",
            "must be positive",
        )?;
        check(
            (4..=128).contains(&self.auth.password_min_length),
            "auth.password_min_length",
            "must be between 4 and 128",
        )?;
        let e = &self.execution;
        check(
            (1..=3600).contains(&e.timeout_seconds),
            "execution.timeout_seconds",
            "must be between 1 and 3600",
        )?;
        check(
            parse_memory(&e.memory_limit).is_some_and(|b| b >= 8 << 20),
            "execution.memory_limit",
            "expected a size like 256Mi, 1Gi or 65536Ki, at least 8Mi",
        )?;
        check(
            e.cpu_limit
                .strip_suffix('m')
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|v| v > 0)),
            "execution.cpu_limit",
            "expected millicores like 1000m",
        )?;
        check(
            e.max_processes >= 4,
            "execution.max_processes",
            "must be at least 4",
        )?;
        check(
            e.max_output_bytes >= 1024,
            "execution.max_output_bytes",
            "must be at least 1024",
        )?;
        check(
            (1..=3600).contains(&e.max_cpu_time_seconds),
            "execution.max_cpu_time_seconds",
            "must be between 1 and 3600",
        )?;
        check(
            e.max_stdin_bytes <= 16 << 20,
            "execution.max_stdin_bytes",
            "must be at most 16777216 (16 MiB)",
        )?;
        check(
            e.max_concurrent >= 1,
            "execution.max_concurrent",
            "must be at least 1",
        )?;
        check(
            e.max_per_user >= 1,
            "execution.max_per_user",
            "must be at least 1",
        )?;
        check(
            e.max_queue_length >= 1,
            "execution.max_queue_length",
            "must be at least 1",
        )?;
        check(
            e.ageing_seconds >= 1,
            "execution.ageing_seconds",
            "must be at least 1",
        )?;
        let n = &self.notifications;
        check(
            n.throttle_window_seconds >= 1,
            "notifications.throttle_window_seconds",
            "must be at least 1",
        )?;
        check(
            (1..=20).contains(&n.max_delivery_attempts),
            "notifications.max_delivery_attempts",
            "must be between 1 and 20",
        )?;
        check(
            self.server.cors_origins.iter().all(|o| integr8s_api::cors::valid_origin(o)),
            "server.cors_origins",
            "expected exact origins such as https://app.example.com (\"*\" cannot be used with cookies)",
        )?;
        check(
            self.server
                .trusted_proxies
                .iter()
                .all(|p| p.parse::<integr8s_api::client_ip::IpNet>().is_ok()),
            "server.trusted_proxies",
            "expected IP addresses or CIDR blocks such as 127.0.0.1 or 10.0.0.0/8",
        )?;
        check(
            self.health.host.parse::<IpAddr>().is_ok(),
            "health.host",
            "expected an IP address such as 0.0.0.0 or 127.0.0.1",
        )?;
        self.bus.validate(&check)?;
        self.telemetry.validate(&check)?;
        limits::validate(&self.quotas, &self.retention, &self.streams, &check)?;
        if let Err(e) = self.k8s.to_config() {
            // The message names its key (`k8s.<key>`).
            let message = e.to_string();
            let key = message
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .find(|w| w.starts_with("k8s.") && w.len() > 4)
                .unwrap_or("k8s")
                .to_owned();
            return Err(invalid(&key, &source_of(&key), &message));
        }
        Ok(())
    }

    /// Whether the bind address only accepts local connections.
    pub fn binds_loopback(&self) -> bool {
        self.server.host == "localhost"
            || self
                .server
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The parsed `server.trusted_proxies` (validated on load).
    pub fn trusted_proxies(&self) -> Vec<integr8s_api::client_ip::IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("integr8s.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    pub fn memory_limit_bytes(&self) -> u64 {
        parse_memory(&self.execution.memory_limit).unwrap_or(256 << 20)
    }
}

/// Parses Kubernetes-style sizes: `512Mi`, `1Gi`, `65536Ki`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("Gi") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("Mi") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("Ki") {
        (n, 1 << 10)
    } else {
        return None;
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn invalid(key: &str, source: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        source_name: source.to_owned(),
        message: message.to_owned(),
    }
}

fn has_key(table: &Table, section: &str, key: &str) -> bool {
    matches!(table.get(section), Some(Value::Table(t)) if t.contains_key(key))
}

fn set_key(
    table: &mut Table,
    section: &str,
    key: &str,
    value: Value,
    origin: &str,
) -> Result<(), ConfigError> {
    if !has_key(table, section, key) {
        return Err(invalid(&format!("{section}.{key}"), origin, "unknown key"));
    }
    if let Some(Value::Table(t)) = table.get_mut(section) {
        t.insert(key.to_owned(), value);
    }
    Ok(())
}

/// Environment values are typed like TOML scalars when they parse as one ("9000", "true"),
/// and are strings otherwise.
fn env_value(raw: &str) -> Value {
    if let Ok(i) = raw.parse::<i64>() {
        return Value::Integer(i);
    }
    match raw {
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests;
