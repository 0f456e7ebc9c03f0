//! The HTTP API of integr8s (axum): the original system's REST contract, cookie sessions with
//! CSRF protection, and execution event streams.
//!
//! [`router`] builds the whole application from an [`AppState`]; the server binds it.

pub mod auth;
pub mod client_ip;
pub mod console;
pub mod cors;
pub mod error;
pub mod extract;
pub mod metrics;
mod middleware;
pub mod openapi;
pub mod quotas;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod streams;
pub mod trace_context;
pub mod workers;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use auth::password::hash_password;
pub use error::{ApiError, ValidationIssue};
pub use state::{ApiConfig, AppState};
pub use workers::WorkerView;

/// The application: every route with its layers (outermost first: tracing, CORS, client
/// address, panic guard, Cache-Control, security headers, body limit, CSRF, rate limit).
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let cors = cors::layer(&state.config.cors_origins);
    Router::new()
        .merge(routes::auth::router())
        .merge(routes::executions::router())
        .merge(routes::runtime::router())
        .merge(routes::health::router())
        .merge(routes::sse::router())
        .merge(routes::scripts::router())
        .merge(routes::user_settings::router())
        .merge(routes::sagas::router())
        .merge(routes::notifications::router())
        .merge(routes::replay::router())
        .merge(routes::dlq::router())
        .merge(routes::admin::router())
        .merge(openapi::router())
        .merge(console::router())
        .merge(metrics::router())
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::csrf::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::body_limit,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn(middleware::cache_control))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_ip::client_ip_layer,
        ))
        .layer(cors)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace_context::request_span::<axum::body::Body>),
        )
        .layer(axum::middleware::from_fn(metrics::measure))
        .with_state(state)
}
