//! Cross-origin requests: the configured origins may call the API with credentials (cookies).

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Response headers a browser script may read.
const EXPOSED: [HeaderName; 6] = [
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    HeaderName::from_static("x-ratelimit-limit"),
    HeaderName::from_static("x-ratelimit-remaining"),
    HeaderName::from_static("x-ratelimit-reset"),
    header::RETRY_AFTER,
];

/// Request headers a cross-origin script may send.
const ALLOWED: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ORIGIN,
    HeaderName::from_static("x-requested-with"),
    HeaderName::from_static("x-csrf-token"),
];

/// Whether `origin` can be listed (an exact origin such as `https://app.example.com`; a
/// wildcard cannot be combined with credentials).
pub fn valid_origin(origin: &str) -> bool {
    origin != "*" && !origin.is_empty() && HeaderValue::from_str(origin).is_ok()
}

/// The CORS layer for `origins` (invalid entries are skipped; none means no cross-origin access).
pub fn layer(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| valid_origin(o))
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ])
        .allow_headers(ALLOWED)
        .expose_headers(EXPOSED)
}
