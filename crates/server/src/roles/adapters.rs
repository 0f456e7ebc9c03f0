//! The adapters of a process, chosen once from the configuration: the store by the scheme of
//! `database.url`, the bus by `bus.brokers`, the limiter by `limiter.redis_url`. Only this
//! module (and the role wiring beside it) names concrete adapters.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use integr8s_bus::kafka::KafkaBus;
use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::ports::{EventBus, EventStore};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::system_settings::SystemSettings;
use integr8s_limiter::RedisConnection;
use integr8s_store::DatabaseStore;

use super::{Role, RoleSet};
use crate::config::Config;
use crate::limiter::Limiters;

/// Readiness checks give up after this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens the store named by `database.url` (the adapter is chosen by the URL's scheme) and
/// brings its schema up to date (safe from several processes at once).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn DatabaseStore>> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "creating data dir {} (server.data_dir)",
            config.server.data_dir.display()
        )
    })?;
    let url = config.database_url();
    let shown = integr8s_store::redact_url(&url);
    let store = integr8s_store::open(&url)
        .await
        .with_context(|| format!("opening database {shown} (database.url)"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("migrating the database {shown}"))?;
    Ok(store)
}

/// The runtime registry (`runtimes.registry_file`, else the embedded one), with the
/// interpreters found on this host.
pub fn load_registry(config: &Config) -> anyhow::Result<RuntimeRegistry> {
    let mut registry = if config.runtimes.registry_file.is_empty() {
        RuntimeRegistry::embedded()
    } else {
        let text = std::fs::read_to_string(&config.runtimes.registry_file).with_context(|| {
            format!(
                "reading runtimes.registry_file {}",
                config.runtimes.registry_file
            )
        })?;
        RuntimeRegistry::from_toml(&text).context("runtimes.registry_file")?
    };
    registry.probe_host();
    for r in registry.runtimes() {
        let have: Vec<_> = r
            .versions
            .iter()
            .filter(|v| v.available)
            .map(|v| v.version.as_str())
            .collect();
        if have.is_empty() {
            tracing::warn!(lang = %r.lang, package = %r.package, "runtime not installed; install the package to enable it");
        } else {
            tracing::info!(lang = %r.lang, versions = ?have, "runtime available");
        }
    }
    Ok(registry)
}

/// The system settings that apply while an admin has stored none: the contract's schema
/// defaults, with the limits, auth values and trace sampling rate of the configuration.
pub fn settings_defaults(config: &Config) -> SystemSettings {
    SystemSettings {
        max_timeout_seconds: config.execution.timeout_seconds,
        memory_limit: config.execution.memory_limit.clone(),
        cpu_limit: config.execution.cpu_limit.clone(),
        max_concurrent_executions: config.execution.max_concurrent,
        password_min_length: u32::try_from(config.auth.password_min_length).unwrap_or(u32::MAX),
        session_timeout_minutes: config.auth.session_timeout_minutes.max(1),
        max_login_attempts: config.auth.max_login_attempts,
        lockout_duration_minutes: config.auth.lockout_minutes.max(1),
        sampling_rate: config.telemetry.sampling_rate,
        ..SystemSettings::default()
    }
}

/// The shared adapters of one process.
pub struct Adapters {
    pub store: Arc<dyn DatabaseStore>,
    pub event_store: Arc<dyn EventStore>,
    pub bus: Arc<dyn EventBus>,
    /// The Kafka bus behind `bus`, when `bus.brokers` is set.
    kafka: Option<KafkaBus>,
    /// Rate limiter and short-lived keys, for the roles that use them.
    pub limiters: Option<Limiters>,
    /// The system settings in force, for every role that applies them.
    pub settings: EffectiveSettings,
}

impl Adapters {
    /// Opens the store, builds the bus (with the outbox relay where `roles` host it) and, if a
    /// role needs them, the limiters.
    pub async fn open(config: &Config, roles: &RoleSet) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        let event_store: Arc<dyn EventStore> = store.clone();
        let (bus, kafka): (Arc<dyn EventBus>, _) = match config.bus.kafka() {
            None => (Arc::new(integr8s_bus::MemoryBus::new(store.clone())), None),
            Some(mut kafka) => {
                kafka.relay = config.bus.relay && roles.any(Role::hosts_relay);
                tracing::info!(
                    brokers = %kafka.brokers,
                    topic_prefix = %kafka.topic_prefix,
                    relay = kafka.relay,
                    "event bus: kafka"
                );
                let bus = KafkaBus::new(store.clone(), kafka).context("bus.brokers")?;
                (Arc::new(bus.clone()), Some(bus))
            }
        };
        let limiters = if roles.any(Role::uses_limiter) {
            Some(crate::limiter::build(config).await?)
        } else {
            None
        };
        let settings = EffectiveSettings::new(store.clone(), settings_defaults(config));
        Ok(Self {
            store,
            settings,
            event_store,
            bus,
            kafka,
            limiters,
        })
    }

    /// The store answers a query.
    pub async fn check_store(&self) -> Result<(), String> {
        bounded(async { self.store.last_seq().await.map(drop) }).await
    }

    /// The bus can reach its brokers (the in-process bus is the store).
    pub async fn check_bus(&self) -> Option<Result<(), String>> {
        let kafka = self.kafka.as_ref()?;
        Some(bounded(kafka.ping()).await)
    }

    /// Redis answers, when the process's roles keep their limits there.
    pub async fn check_redis(&self) -> Option<Result<(), String>> {
        let redis: &RedisConnection = self.limiters.as_ref()?.redis.as_ref()?;
        Some(bounded(redis.ping()).await)
    }
}

async fn bounded<E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}
