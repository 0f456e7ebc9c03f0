//! The API role: the HTTP server over the process's adapters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use integr8s_api::{ApiConfig, AppState};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::Store;
use integr8s_core::runtime::RuntimeRegistry;
use tokio_util::sync::CancellationToken;

use super::adapters::Adapters;
use super::engine::run_limits;
use super::engine::{named, RoleTasks};
use crate::config::Config;

fn api_config(config: &Config, secret: Vec<u8>) -> ApiConfig {
    ApiConfig {
        secret,
        cookie_secure: config.server.cookie_secure,
        run_limits: run_limits(config),
        max_queue_length: config.execution.max_queue_length,
        cpu_request: config.execution.cpu_limit.clone(),
        memory_request: config.execution.memory_limit.clone(),
        max_body_bytes: 10 * 1024 * 1024,
        allow_insecure_webhooks: config.notifications.allow_insecure_webhooks,
        rate_limit_enabled: config.rate_limit.enabled,
        cors_origins: config.server.cors_origins.clone(),
        trusted_proxies: config.trusted_proxies(),
        max_cpu_time_seconds: config.execution.max_cpu_time_seconds,
        max_stdin_bytes: usize::try_from(config.execution.max_stdin_bytes).unwrap_or(usize::MAX),
        auth_limits: integr8s_api::auth::guard::AuthLimits::new(
            config.auth.login_per_ip_per_minute,
            config.auth.login_per_account_per_minute,
            config.auth.register_per_ip_per_hour,
            config.auth.max_concurrent_password_hashes,
            Duration::from_millis(config.auth.password_hash_wait_ms),
        ),
        metrics_token: config.metrics.token(),
        quotas: config.quotas.quotas(),
        streams: config.streams.limits(),
    }
}

/// Binds the API's address, prints it, and serves until `shutdown`.
pub async fn start(
    config: &Config,
    adapters: &Adapters,
    registry: Arc<RuntimeRegistry>,
    tasks: &mut RoleTasks,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let secret = crate::secret::load_or_create(&config.auth.secret, &config.server.data_dir)?;
    let limiters = adapters
        .limiters
        .as_ref()
        .context("the API needs the limiter adapters")?;
    let store: Arc<dyn Store> = adapters.store.clone();
    let state = AppState {
        store,
        settings: adapters.settings.clone(),
        bus: adapters.bus.clone(),
        outbox: Outbox::new(adapters.event_store.clone(), adapters.bus.clone(), "api"),
        kv: limiters.kv.clone(),
        registry,
        workers: integr8s_api::WorkerView::default(),
        config: Arc::new(api_config(config, secret)),
        started_at: Instant::now(),
        rate_limits: integr8s_api::ratelimit::RateLimits::new(limiters.rate.clone()),
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
    let stop = shutdown.clone();
    tasks.spawn(named("api", async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    }));
    Ok(())
}
