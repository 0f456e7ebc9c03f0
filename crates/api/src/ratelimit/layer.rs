//! The rate-limit middleware: picks the bucket and rule, counts, and answers 429 when refused.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use integr8s_core::ports::ratelimit::{EndpointGroup, RateLimitDecision};
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::counter;
use serde_json::json;

use super::{is_excluded, rules, RateLimits, StreamSlot};

/// When all of a bucket's stream places are taken, clients are told to retry after this long.
const STREAM_RETRY_SECS: i64 = 1;
use crate::auth::{cookie, session, ACCESS_COOKIE};
use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::state::AppState;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn put_headers(headers: &mut HeaderMap, d: &RateLimitDecision) {
    headers.insert(LIMIT, HeaderValue::from(d.limit));
    headers.insert(REMAINING, HeaderValue::from(d.remaining));
    headers.insert(RESET, HeaderValue::from(d.reset_at.timestamp()));
}

fn refused(d: &RateLimitDecision) -> Response {
    let body = json!({
        "detail": "Rate limit exceeded",
        "retry_after": d.retry_after_secs,
        "reset_at": d.reset_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    put_headers(response.headers_mut(), d);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
    response
}

/// The user id of a genuine, unexpired session cookie (signature checked, no store access).
fn session_user_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let token = cookie(headers, ACCESS_COOKIE)?;
    session::subject(state, &token)
}

/// What the limits say about one request.
enum Verdict {
    /// No rule applies.
    Free,
    /// The user's override bypasses limits.
    Bypass,
    /// Counted against a per-window budget.
    Counted(RateLimitDecision),
    /// An event stream that holds its place until the response ends.
    Stream(StreamSlot, RateLimitDecision),
    Refused(RateLimitDecision),
}

/// Counts the request against its bucket: the signed-in user's, or the client address's.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.config.rate_limit_enabled || is_excluded(req.uri().path()) {
        return next.run(req).await;
    }
    let user_id = session_user_id(&state, req.headers());
    let ip = req.extensions().get::<ClientIp>().and_then(|c| c.0);
    let path = req.uri().path().to_owned();
    let verdict = decide(&state, user_id, ip, &path).await;
    record_verdict(&verdict);
    match verdict {
        Ok(Verdict::Free | Verdict::Bypass) => next.run(req).await,
        Ok(Verdict::Counted(decision)) => {
            let mut response = next.run(req).await;
            put_headers(response.headers_mut(), &decision);
            response
        }
        Ok(Verdict::Stream(slot, decision)) => {
            let mut response = next.run(req).await;
            put_headers(response.headers_mut(), &decision);
            // The place is freed when the body is dropped: the stream ended or the client left.
            response.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let _holds = &slot;
                    chunk
                }))
            })
        }
        Ok(Verdict::Refused(decision)) => refused(&decision),
        Err(e) => {
            // Counting is best effort: an unavailable limiter must not take the API down.
            tracing::warn!(error = %e, "rate limit not applied");
            next.run(req).await
        }
    }
}

fn record_verdict(verdict: &Result<Verdict, ApiError>) {
    let outcome = match verdict {
        Ok(Verdict::Free) => return,
        Ok(Verdict::Bypass) => catalogue::RATE_LIMIT_BYPASS_TOTAL,
        Ok(Verdict::Counted(_) | Verdict::Stream(..)) => catalogue::RATE_LIMIT_ALLOWED_TOTAL,
        Ok(Verdict::Refused(_)) => catalogue::RATE_LIMIT_REJECTED_TOTAL,
        Err(_) => catalogue::RATE_LIMIT_FAIL_OPEN_TOTAL,
    };
    counter!(catalogue::RATE_LIMIT_REQUESTS_TOTAL).increment(1);
    counter!(outcome).increment(1);
}

async fn decide(
    state: &AppState,
    user_id: Option<String>,
    ip: Option<IpAddr>,
    path: &str,
) -> Result<Verdict, ApiError> {
    let service: &RateLimits = &state.rate_limits;
    let profile = match user_id {
        Some(user_id) => service.profile(state.store.as_ref(), &user_id).await?,
        None => None,
    };
    let config = profile.as_ref().and_then(|p| p.config.as_ref());
    if config.is_some_and(|c| c.bypass_rate_limit) {
        return Ok(Verdict::Bypass);
    }
    let user_rules = profile
        .as_ref()
        .map(|p| p.rules.as_slice())
        .unwrap_or_default();
    let Some(chosen) = rules::select(user_rules, service.default_rules(), path) else {
        return Ok(Verdict::Free);
    };
    let prefix = match &profile {
        Some(p) => RateLimits::user_prefix(&p.user_id),
        None => {
            RateLimits::ip_prefix(&ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()))
        }
    };
    let key = format!("{prefix}{}", chosen.rule.endpoint_pattern);
    let spec = rules::effective(&chosen.rule, config);
    let now = integr8s_core::now();
    if chosen.rule.group == EndpointGroup::Sse {
        let max = spec.requests;
        let decision = |open: u32| RateLimitDecision {
            allowed: true,
            limit: max,
            remaining: max.saturating_sub(open),
            reset_at: now + chrono::Duration::seconds(STREAM_RETRY_SECS),
            retry_after_secs: STREAM_RETRY_SECS.unsigned_abs(),
        };
        return Ok(match service.open_stream(&key, max) {
            Ok((slot, open)) => Verdict::Stream(slot, decision(open)),
            Err(open) => Verdict::Refused(RateLimitDecision {
                allowed: false,
                ..decision(open)
            }),
        });
    }
    let decision = service.limiter().check(&key, &spec, now).await?;
    Ok(if decision.allowed {
        Verdict::Counted(decision)
    } else {
        Verdict::Refused(decision)
    })
}
