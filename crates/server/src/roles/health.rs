//! The health port of a process that runs only some of the roles: `/health/live` (the
//! process is up) and `/health/ready` (the store, the bus and Redis answer, as far as its
//! roles use them, the sandbox works where a local worker runs, and the Kubernetes API
//! answers where a role of the Kubernetes executor runs), on `health.host` / `health.port`.
//! The all-in-one server answers health on the API's port instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use integr8s_core::ports::Executor;
use integr8s_sandbox::LocalExecutor;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::adapters::Adapters;
use super::engine::{named, Kubernetes, RoleTasks};
use super::RoleSet;
use crate::config::Config;

/// The Kubernetes readiness check gives up after this long.
const KUBERNETES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Clone)]
struct Health {
    roles: Vec<&'static str>,
    adapters: Arc<Adapters>,
    executor: Option<Arc<LocalExecutor>>,
    kubernetes: Option<Kubernetes>,
    started_at: Instant,
    metrics_token: Option<String>,
}

fn check(result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"ready": true, "detail": null}),
        Err(detail) => json!({"ready": false, "detail": detail}),
    }
}

async fn live(State(h): State<Health>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "roles": h.roles,
        "uptime_seconds": h.started_at.elapsed().as_secs(),
        "timestamp": integr8s_core::now(),
    }))
}

async fn ready(State(h): State<Health>) -> (StatusCode, Json<Value>) {
    let (store, bus, redis) = tokio::join!(
        h.adapters.check_store(),
        h.adapters.check_bus(),
        h.adapters.check_redis()
    );
    let mut checks = serde_json::Map::new();
    let mut ok = store.is_ok();
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: store check failed");
    }
    checks.insert("store".into(), check(store));
    for (name, result) in [("bus", bus), ("redis", redis)] {
        if let Some(result) = result {
            if let Err(e) = &result {
                tracing::warn!(error = %e, "readiness: {name} check failed");
            }
            ok &= result.is_ok();
            checks.insert(name.into(), check(result));
        }
    }
    if let Some(executor) = &h.executor {
        let sandbox = executor.health();
        ok &= sandbox.ready;
        checks.insert(
            "sandbox".into(),
            json!({"ready": sandbox.ready, "mode": sandbox.mode, "detail": sandbox.detail}),
        );
    }
    if let Some(k8s) = &h.kubernetes {
        // A list of at most one pod in the executor namespace.
        let answer =
            match tokio::time::timeout(KUBERNETES_TIMEOUT, k8s.config.ping(&k8s.client)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {} s",
                    KUBERNETES_TIMEOUT.as_secs()
                )),
            };
        if let Err(e) = &answer {
            tracing::warn!(error = %e, "readiness: Kubernetes API check failed");
        }
        ok &= answer.is_ok();
        checks.insert("kubernetes".into(), check(answer));
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "roles": h.roles,
        "checks": checks,
    });
    (status, Json(body))
}

/// The process's metrics in the Prometheus text format, behind `metrics.token` when set.
async fn metrics(State(h): State<Health>, headers: HeaderMap) -> Response {
    integr8s_api::metrics::render(h.metrics_token.as_deref(), &headers)
}

/// Binds the health port, prints its address, and serves until `shutdown`.
pub async fn start(
    config: &Config,
    roles: &RoleSet,
    adapters: Arc<Adapters>,
    executor: Option<Arc<LocalExecutor>>,
    kubernetes: Option<Kubernetes>,
    tasks: &mut RoleTasks,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let health = Health {
        roles: roles.iter().map(super::Role::name).collect(),
        adapters,
        executor,
        kubernetes,
        started_at: Instant::now(),
        metrics_token: config.metrics.token(),
    };
    let app = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(health);
    let (host, port) = (&config.health.host, config.health.port);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .with_context(|| format!("health.host/health.port {host}:{port}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (health.host / health.port)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, roles = %roles, "health endpoints listening");
    // A line on stdout that scripts and tests can wait for.
    println!("integr8s health on http://{bound}");
    let stop = shutdown.clone();
    tasks.spawn(named("health", async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    }));
    Ok(())
}
