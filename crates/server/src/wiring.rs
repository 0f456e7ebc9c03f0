//! The composition root: builds the adapters once and runs the roles of `serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use integr8s_api::{ApiConfig, AppState};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, EventStore, Executor, QueuePolicy, Store};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::RunLimits;
use integr8s_engine::notifications::{
    DeliveryWorker, NotificationConfig, NotificationService, ThrottleConfig,
};
use integr8s_engine::{Coordinator, EngineConfig, LocalWorker, ResultProcessor, SagaOrchestrator};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Opens the store named by `database.url` (the adapter is chosen by the URL's scheme) and
/// brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn integr8s_store::DatabaseStore>> {
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

fn run_limits(config: &Config) -> RunLimits {
    RunLimits {
        timeout_seconds: config.execution.timeout_seconds,
        memory_bytes: config.memory_limit_bytes(),
        max_processes: config.execution.max_processes,
        max_output_bytes: config.execution.max_output_bytes,
        cpu_time_ms: None,
    }
}

fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        queue: QueuePolicy {
            max_active: config.execution.max_concurrent,
            max_active_per_user: config.execution.max_per_user,
            ageing_seconds: config.execution.ageing_seconds,
        },
        tick: Duration::from_secs(1),
        max_handler_attempts: 5,
    }
}

fn notification_config(config: &Config) -> NotificationConfig {
    let n = &config.notifications;
    NotificationConfig {
        throttle: (n.throttle_max_per_window > 0).then(|| ThrottleConfig {
            max_per_window: n.throttle_max_per_window,
            window: Duration::from_secs(n.throttle_window_seconds),
        }),
        max_attempts: n.max_delivery_attempts,
        // The testing switch that accepts http:// on loopback also lets deliveries go there.
        allow_private_targets: n.allow_insecure_webhooks,
        ..NotificationConfig::default()
    }
}

/// Runs the all-in-one server until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::seed::check_exposure(&config)?;
    let store = open_store(&config).await?;
    crate::seed::seed_if_empty(&config, store.as_ref()).await?;
    crate::seed::check_stored_defaults(&config, store.as_ref()).await?;
    let secret = crate::secret::load_or_create(&config.auth.secret, &config.server.data_dir)?;

    let registry_config = config.clone();
    let registry = tokio::task::spawn_blocking(move || load_registry(&registry_config))
        .await
        .context("probing runtimes")??;
    let registry = Arc::new(registry);

    let sandbox_config = integr8s_sandbox::SandboxConfig {
        bwrap: config.sandbox.bwrap.clone(),
        uid_base: config.sandbox.uid_base,
        max_concurrent: config.execution.max_concurrent as usize,
        warm_limits: run_limits(&config),
        ..Default::default()
    };
    let executor = Arc::new(integr8s_sandbox::LocalExecutor::start(sandbox_config).await);
    if let Some(reason) = executor.uid_claim_error() {
        anyhow::bail!("{reason}");
    }
    let health = executor.health();
    if health.ready {
        tracing::info!(mode = %health.mode, detail = ?health.detail, "sandbox ready");
    } else {
        tracing::error!(mode = %health.mode, detail = ?health.detail, "sandbox unavailable: executions will fail until this is fixed");
    }

    let dyn_store: Arc<dyn Store> = store.clone();
    let event_store: Arc<dyn EventStore> = store.clone();
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(event_store.clone()));
    let engine = engine_config(&config);
    let shutdown = CancellationToken::new();
    let mut roles = JoinSet::new();
    {
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "coordinator");
        let c = Coordinator::new(dyn_store.clone(), bus.clone(), outbox, engine);
        roles.spawn(named("coordinator", c.run(shutdown.clone())));
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "saga-orchestrator");
        let s = SagaOrchestrator::new(dyn_store.clone(), bus.clone(), outbox, engine);
        roles.spawn(named("saga-orchestrator", s.run(shutdown.clone())));
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "local-worker");
        let exec: Arc<dyn Executor> = executor.clone();
        let w = LocalWorker::new(
            dyn_store.clone(),
            bus.clone(),
            outbox,
            exec,
            registry.clone(),
            engine,
        );
        roles.spawn(named("local-worker", w.run(shutdown.clone())));
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "result-processor");
        let r = ResultProcessor::new(dyn_store.clone(), bus.clone(), outbox, engine);
        roles.spawn(named("result-processor", r.run(shutdown.clone())));
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "dlq-processor");
        let mut dlq = integr8s_engine::dlq::DlqConfig::default();
        if let Some(age) = config.retention.dlq_age() {
            dlq.retention = age;
        } else {
            // Kept for ever: a century.
            dlq.retention = Duration::from_secs(100 * 365 * 86_400);
        }
        let p = integr8s_engine::dlq::DlqProcessor::new(dyn_store.clone(), outbox, dlq);
        roles.spawn(named("dlq-processor", p.run(shutdown.clone())));
        let sweeper = integr8s_engine::retention::RetentionSweeper::new(
            dyn_store.clone(),
            config.retention.sweeper(),
        );
        roles.spawn(named("retention-sweeper", sweeper.run(shutdown.clone())));
        // `file` replay targets write under <data_dir>/replays only.
        let replays = integr8s_engine::replay::ReplayRunnerConfig::new(
            config.server.data_dir.join("replays"),
        );
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "event-replay");
        let rr = integr8s_engine::replay::ReplayRunner::new(dyn_store.clone(), outbox, replays);
        roles.spawn(named("event-replay", rr.run(shutdown.clone())));
        let notifications = notification_config(&config);
        let outbox = Outbox::new(event_store.clone(), bus.clone(), "notification-service");
        let n = NotificationService::new(
            dyn_store.clone(),
            bus.clone(),
            outbox,
            engine,
            notifications.clone(),
        );
        roles.spawn(named("notification-service", n.run(shutdown.clone())));
        let d = DeliveryWorker::new(dyn_store.clone(), bus.clone(), notifications)?;
        roles.spawn(named("notification-delivery", d.run(shutdown.clone())));
    }

    let limiters = crate::limiter::build(&config).await?;
    let health_source = executor.clone();
    let state = AppState {
        store: dyn_store.clone(),
        bus: bus.clone(),
        outbox: Outbox::new(event_store.clone(), bus.clone(), "api"),
        kv: limiters.kv,
        registry: registry.clone(),
        executor_health: Arc::new(move || health_source.health()),
        config: Arc::new(ApiConfig {
            secret,
            cookie_secure: config.server.cookie_secure,
            session_timeout: Duration::from_secs(config.auth.session_timeout_minutes * 60),
            max_login_attempts: config.auth.max_login_attempts,
            lockout_duration: Duration::from_secs(config.auth.lockout_minutes * 60),
            password_min_length: config.auth.password_min_length,
            run_limits: run_limits(&config),
            max_queue_length: config.execution.max_queue_length,
            cpu_limit: config.execution.cpu_limit.clone(),
            memory_limit: config.execution.memory_limit.clone(),
            cpu_request: config.execution.cpu_limit.clone(),
            memory_request: config.execution.memory_limit.clone(),
            max_body_bytes: 10 * 1024 * 1024,
            allow_insecure_webhooks: config.notifications.allow_insecure_webhooks,
            max_concurrent_executions: config.execution.max_concurrent,
            rate_limit_enabled: config.rate_limit.enabled,
            cors_origins: config.server.cors_origins.clone(),
            trusted_proxies: config.trusted_proxies(),
            max_cpu_time_seconds: config.execution.max_cpu_time_seconds,
            max_stdin_bytes: usize::try_from(config.execution.max_stdin_bytes)
                .unwrap_or(usize::MAX),
            auth_limits: integr8s_api::auth::guard::AuthLimits::new(
                config.auth.login_per_ip_per_minute,
                config.auth.login_per_account_per_minute,
                config.auth.register_per_ip_per_hour,
                config.auth.max_concurrent_password_hashes,
                Duration::from_millis(config.auth.password_hash_wait_ms),
            ),
            quotas: config.quotas.quotas(),
            streams: config.streams.limits(),
        }),
        started_at: Instant::now(),
        rate_limits: integr8s_api::ratelimit::RateLimits::new(limiters.rate),
        streams: integr8s_api::streams::StreamHub::new(config.streams.limits()),
    };
    let app = integr8s_api::router(state);

    let host = if config.server.host == "localhost" {
        "127.0.0.1"
    } else {
        config.server.host.as_str()
    };
    let addr: SocketAddr = format!("{host}:{}", config.server.port)
        .parse()
        .with_context(|| format!("server.host/server.port {host}:{}", config.server.port))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (server.host / server.port)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "integr8s listening");
    // A line on stdout that scripts and tests can wait for.
    println!("integr8s listening on http://{bound}");

    // Small responses and SSE frames go out at once instead of waiting for the peer's
    // delayed ACK (Nagle), which otherwise holds the end of a stream for tens of ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let http_shutdown = shutdown.clone();
    let mut http = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
        .await
    });

    let outcome: anyhow::Result<()> = tokio::select! {
        () = crate::shutdown_signal() => { tracing::info!("shutting down"); Ok(()) }
        res = &mut http => Err(anyhow::anyhow!("http server stopped: {res:?}")),
        Some(res) = roles.join_next() => Err(anyhow::anyhow!("a role stopped unexpectedly: {res:?}")),
    };
    shutdown.cancel();
    let drain = async {
        while let Some(res) = roles.join_next().await {
            if let Ok(Err(e)) = res {
                tracing::error!(error = %e, "role ended with an error");
            }
        }
        let _ = http.await;
    };
    if tokio::time::timeout(Duration::from_secs(15), drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown did not finish within 15 s");
    }
    outcome
}

async fn named<F, E>(name: &'static str, fut: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    fut.await.map_err(|e| format!("{name}: {e}"))
}
