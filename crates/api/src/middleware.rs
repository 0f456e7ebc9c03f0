//! Cross-cutting layers: security headers, Cache-Control, the body-size limit and JSON fallbacks.

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'",
    ),
];

/// Adds the security headers to every response (a Content-Security-Policy only when the route
/// set none).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        let name = HeaderName::from_static(name);
        // A route with a stricter policy of its own (the console) keeps it.
        if name == header::CONTENT_SECURITY_POLICY && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Refuses a declared `Content-Length` above the limit before any handler runs (413 JSON).
/// Bodies without a length are capped while being read by the extractors.
pub async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(req).await
}

/// Marks the answers of the router's fallbacks: no route matched the request.
#[derive(Debug, Clone, Copy)]
pub struct Unrouted;

fn unrouted(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.extensions_mut().insert(Unrouted);
    response
}

pub async fn not_found() -> Response {
    unrouted(ApiError::not_found_route())
}

pub async fn method_not_allowed() -> Response {
    unrouted(ApiError::method_not_allowed())
}

/// Turns a handler panic into a generic 500 JSON answer.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("handler panicked".to_owned()).into_response()
}

/// `Cache-Control` of successful GETs by path prefix, as the contract sets it.
const CACHE_RULES: [(&str, &str); 3] = [
    ("/api/v1/k8s-limits", "public, max-age=300"),
    ("/api/v1/example-scripts", "public, max-age=600"),
    ("/api/v1/notifications", "private, no-cache"),
];

/// Adds the contract's `Cache-Control` to successful GETs that do not set one themselves.
pub async fn cache_control(req: Request, next: Next) -> Response {
    let rule = (req.method() == axum::http::Method::GET)
        .then(|| {
            CACHE_RULES
                .iter()
                .find(|(prefix, _)| req.uri().path().starts_with(prefix))
        })
        .flatten();
    let mut response = next.run(req).await;
    let ok = response.status() == axum::http::StatusCode::OK;
    let headers = response.headers_mut();
    if let Some((prefix, value)) = rule.filter(|_| ok) {
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        }
        if *prefix == "/api/v1/example-scripts" && !headers.contains_key(header::VARY) {
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    response
}
