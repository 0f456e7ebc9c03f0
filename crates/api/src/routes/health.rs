//! Liveness (the contract's `/health/live`) and readiness (store and sandbox checks).

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
    let store = match state.store.last_seq().await {
        Ok(_) => json!({"ready": true, "detail": null}),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store check failed");
            json!({"ready": false, "detail": "store unavailable"})
        }
    };
    let sandbox = (state.executor_health)();
    let ok = store["ready"] == true && sandbox.ready;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "checks": {
            "store": store,
            "sandbox": {"ready": sandbox.ready, "mode": sandbox.mode, "detail": sandbox.detail},
        },
    });
    (status, Json(body)).into_response()
}
