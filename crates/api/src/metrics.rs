//! `GET /metrics` (Prometheus text format) and the middleware that measures every HTTP request
//! by method, path template and status. Event streams are measured while they stay open: the
//! open streams per path and the frames they sent (keep-alive pings excluded).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::{counter, gauge, histogram};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The label of requests that matched no route (the path itself would let clients mint labels).
const UNMATCHED: &str = "unmatched";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render(state.config.metrics_token.as_deref(), &headers)
}

/// The answer to a scrape: the process's metrics, or 401 in the contract's shape when `token`
/// is set and the request does not carry it as a bearer token. Also served on the health port
/// of processes without the API.
pub fn render(token: Option<&str>, headers: &HeaderMap) -> Response {
    if let Some(token) = token {
        if !bearer_matches(headers, token) {
            return ApiError::not_authenticated().into_response();
        }
    }
    match integr8s_telemetry::install() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::domain(
            StatusCode::SERVICE_UNAVAILABLE,
            "MetricsUnavailable",
            "metrics are not recorded by this process".to_owned(),
        )
        .into_response(),
    }
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

/// Measures one request: count, duration to the response head, requests in flight, and the
/// size of bodies whose length is known.
pub async fn measure(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let labels = [("method", method.clone()), ("path", path.clone())];
    // Lowered when this future ends, also when the client went away and it was dropped.
    let active = Raised::new(gauge!(catalogue::HTTP_REQUESTS_ACTIVE, &labels));
    let started = Instant::now();
    let response = next.run(req).await;
    drop(active);
    histogram!(catalogue::HTTP_REQUEST_DURATION_SECONDS, &labels)
        .record(started.elapsed().as_secs_f64());
    let status = response.status().as_u16().to_string();
    counter!(catalogue::HTTP_REQUESTS_TOTAL, "method" => method, "path" => path.clone(), "status" => status)
        .increment(1);
    if let Some(size) = content_length(response.headers()) {
        histogram!(catalogue::HTTP_RESPONSE_SIZE_BYTES, &labels).record(size as f64);
    }
    if is_event_stream(response.headers()) {
        return measure_stream(response, path);
    }
    response
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Counts the stream as open until its body is dropped, and its data frames as they go out.
fn measure_stream(response: Response, path: String) -> Response {
    let guard = Raised::new(gauge!(catalogue::SSE_CONNECTIONS_ACTIVE, "stream" => path.clone()));
    let sent = counter!(catalogue::SSE_MESSAGES_SENT_TOTAL, "stream" => path);
    response.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _open = &guard;
            if let Ok(bytes) = &chunk {
                // Comments (`: ping`) keep the connection alive; they are not messages.
                let frames = bytes
                    .split(|b| *b == b'\n')
                    .filter(|line| line.starts_with(b"data:"))
                    .count();
                sent.increment(frames as u64);
            }
            chunk
        }))
    })
}

/// A gauge raised by one while this value lives.
struct Raised(integr8s_telemetry::metrics::Gauge);

impl Raised {
    fn new(gauge: integr8s_telemetry::metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
