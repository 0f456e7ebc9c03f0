//! Traces: W3C trace-context propagation for every crate, and (in [`export`]) the OTLP/HTTP
//! exporter a process installs when an endpoint is configured.
//!
//! Until [`export::install`] runs, tracing is off: [`current_traceparent`] answers `None` and
//! [`continue_trace`] does nothing, each after one relaxed atomic load, so a process without an
//! endpoint pays nothing on its hot paths.

pub mod export;
mod sampler;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use sampler::SamplingControl;

/// The W3C header (and Kafka header, and envelope field) that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces (an OTLP endpoint is configured and the exporter runs).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of the current span, to hand to the next hop; `None` when tracing is
/// off or there is no span with a trace context.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    traceparent_of(&tracing::Span::current())
}

/// The W3C `traceparent` of `span`, when tracing is on and the span has a valid context.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the trace context in `traceparent` (a W3C header value); a missing
/// or malformed value leaves `span` the root of a new trace. Call it before the span is entered.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() || span.is_disabled() {
        return;
    }
    let Some(value) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        // Fails only when the span was already started, which callers avoid.
        let _ = span.set_parent(cx);
    }
}

/// The trace and span ids (lowercase hex) of `span`, for log lines; `None` when tracing is off.
pub fn ids_of(span: &tracing::Span) -> Option<(String, String)> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let span_ref = cx.span();
    let sc = span_ref.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}
