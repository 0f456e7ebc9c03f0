//! The span of each HTTP request. With tracing on it is a server span named after the route
//! that continues the trace of an incoming W3C `traceparent` header; with tracing off it is the
//! plain debug span of the request (path only: a query may carry secrets), as it is for the
//! probes, scrapes and static files.

use axum::extract::MatchedPath;
use axum::http::Request;
use integr8s_telemetry::trace;

/// Routes that are never traced (as in the system we replace): probes, scrapes, documents and
/// the console's files.
const UNTRACED: [&str; 6] = [
    "/api/v1/health/live",
    "/api/v1/health/ready",
    "/metrics",
    "/openapi.json",
    "/",
    "/console/{version}/{*path}",
];

pub fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let matched = req.extensions().get::<MatchedPath>();
    if !trace::enabled() || matched.is_some_and(|p| UNTRACED.contains(&p.as_str())) {
        return tracing::debug_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            version = ?req.version(),
        );
    }
    let route = matched.map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{} {route}", req.method()).as_str(),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        url.path = %req.uri().path(),
    );
    let parent = req
        .headers()
        .get(trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    trace::continue_trace(&span, parent);
    span
}
