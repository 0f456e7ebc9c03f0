//! Liveness (the contract's `/health/live`) and readiness (store and sandbox checks). The
//! sandbox check is the workers' own: the executor health each live worker reports with its
//! lease (see `crate::workers`); it is ready when at least one live worker's executor is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health/live", get(live))
        .route("/api/v1/health/ready", get(ready))
}

/// The contract's `LivenessResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LivenessResponse {
    pub status: String,
    pub uptime_seconds: u64,
    pub timestamp: DateTime<Utc>,
}

async fn live(State(state): State<AppState>) -> Response {
    Json(LivenessResponse {
        status: "ok".to_owned(),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        timestamp: integr8s_core::now(),
    })
    .into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let leases = crate::workers::live(&state).await;
    let store = match &leases {
        Ok(_) => json!({"ready": true, "detail": null}),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store check failed");
            json!({"ready": false, "detail": "store unavailable"})
        }
    };
    let leases = leases.unwrap_or_default();
    let ready_workers = leases.iter().filter(|l| l.report.executor.ready).count();
    // The first ready worker speaks for the sandbox; else the first worker says what is wrong.
    let sandbox = match leases
        .iter()
        .find(|l| l.report.executor.ready)
        .or_else(|| leases.first())
    {
        Some(lease) => {
            let health = &lease.report.executor;
            json!({
                "ready": health.ready,
                "mode": health.mode,
                "detail": health.detail,
                "workers": {"live": leases.len(), "ready": ready_workers},
            })
        }
        None => json!({
            "ready": false,
            "mode": "unavailable",
            "detail": "no live worker: no worker has renewed its lease recently",
            "workers": {"live": 0, "ready": 0},
        }),
    };
    let ok = store["ready"] == true && sandbox["ready"] == true;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "checks": {
            "store": store,
            "sandbox": sandbox,
        },
    });
    (status, Json(body)).into_response()
}
