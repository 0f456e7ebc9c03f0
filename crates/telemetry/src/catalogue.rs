//! Every metric integr8s records: its name, kind, labels and help text. Names follow the
//! original system's catalogue (dotted names with `_` and unit suffixes) where one fits.

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

macro_rules! catalogue {
    ($($id:ident = $name:literal, $kind:ident, [$($label:literal),*], $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: &str = $name;
        )*
        /// Every metric, in the order of `docs/metrics.md`.
        pub const CATALOGUE: &[MetricSpec] = &[
            $(MetricSpec { name: $name, kind: MetricKind::$kind, labels: &[$($label),*], help: $help },)*
        ];
    };
}

catalogue! {
    HTTP_REQUESTS_TOTAL = "http_requests_total", Counter, ["method", "path", "status"],
        "HTTP requests answered, by method, path template and status.";
    HTTP_REQUEST_DURATION_SECONDS = "http_request_duration_seconds", Histogram, ["method", "path"],
        "Time to answer an HTTP request (to the response head; streams count until they open).";
    HTTP_REQUESTS_ACTIVE = "http_requests_active", Gauge, ["method", "path"],
        "HTTP requests being answered now.";
    HTTP_RESPONSE_SIZE_BYTES = "http_response_size_bytes", Histogram, ["method", "path"],
        "Size of HTTP response bodies whose length is known up front.";
    SCRIPT_EXECUTIONS_TOTAL = "script_executions_total", Counter, ["status"],
        "Executions that ended, by final status (counted once, when the result is stored).";
    SCRIPT_EXECUTION_DURATION_SECONDS = "script_execution_duration_seconds", Histogram, [],
        "Wall time of the script's run, as the executor measured it.";
    SCRIPT_MEMORY_USAGE_BYTES = "script_memory_usage_bytes", Histogram, [],
        "Peak memory of a run.";
    SCRIPT_ERRORS_TOTAL = "script_errors_total", Counter, ["error_type"],
        "Executions that ended with an error type (script_error, timeout, resource_limit, system_error, ...).";
    EXECUTION_QUEUE_DEPTH = "execution_queue_depth", Gauge, [],
        "Executions waiting in the queue, read from the store by the coordinator after each dispatch round.";
    EXECUTION_QUEUE_ACTIVE = "execution_queue_active", Gauge, [],
        "Queue entries holding an execution slot, read with the queue depth.";
    EXECUTION_QUEUE_WAIT_TIME_SECONDS = "execution_queue_wait_time_seconds", Histogram, ["priority"],
        "Time from admission to the queue until the execution got a slot.";
    EVENTS_PUBLISHED_TOTAL = "events_published_total", Counter, ["event_type"],
        "Events stored and handed to the bus by this process.";
    EVENT_PUBLISH_FAILURES_TOTAL = "event_publish_failures_total", Counter, ["event_type"],
        "Stored events the bus refused at once (they stay in the store for the relay).";
    EVENT_PROCESSING_DURATION_SECONDS = "event_processing_duration_seconds", Histogram, ["group", "event_type"],
        "Time a consumer group's handler took for one delivery.";
    EVENT_PROCESSING_ERRORS_TOTAL = "event_processing_errors_total", Counter, ["group", "event_type"],
        "Deliveries whose handler failed (each is redelivered or dead-lettered).";
    SSE_CONNECTIONS_ACTIVE = "sse_connections_active", Gauge, ["stream"],
        "Open server-sent event streams, by stream (execution, notifications).";
    SSE_MESSAGES_SENT_TOTAL = "sse_messages_sent_total", Counter, ["stream"],
        "Server-sent event frames written, keep-alive pings excluded.";
    IDEMPOTENCY_DUPLICATES_BLOCKED_TOTAL = "idempotency_duplicates_blocked_total", Counter, [],
        "Submissions answered with the existing execution of their idempotency key.";
    DLQ_MESSAGES_RECEIVED_TOTAL = "dlq_messages_received_total", Counter, ["group"],
        "Events dead-lettered after their handler failed on its last attempt.";
    RATE_LIMIT_REQUESTS_TOTAL = "rate_limit_requests_total", Counter, [],
        "Requests checked against a rate limit rule.";
    RATE_LIMIT_ALLOWED_TOTAL = "rate_limit_allowed_total", Counter, [],
        "Requests a rate limit rule allowed.";
    RATE_LIMIT_REJECTED_TOTAL = "rate_limit_rejected_total", Counter, [],
        "Requests refused with 429.";
    RATE_LIMIT_BYPASS_TOTAL = "rate_limit_bypass_total", Counter, [],
        "Requests of users whose override bypasses rate limits.";
    RATE_LIMIT_FAIL_OPEN_TOTAL = "rate_limit_fail_open_total", Counter, [],
        "Requests let through unchecked: Redis unreachable (counted by the limiter, and also as allowed) or the rule lookup failed.";
    AUTHENTICATION_ATTEMPTS_TOTAL = "authentication_attempts_total", Counter, [],
        "Sign-in attempts.";
    AUTHENTICATION_FAILURES_TOTAL = "authentication_failures_total", Counter, ["reason"],
        "Sign-in attempts refused, by reason (credentials, locked, throttled, deactivated).";
    SANDBOX_RUNS_TOTAL = "sandbox_runs_total", Counter, ["outcome"],
        "Runs of the local sandbox, by outcome.";
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_prometheus_conventions() {
        let mut seen = HashSet::new();
        for spec in CATALOGUE {
            assert!(seen.insert(spec.name), "{} twice", spec.name);
            assert!(
                spec.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                spec.name
            );
            match spec.kind {
                MetricKind::Counter => assert!(spec.name.ends_with("_total"), "{}", spec.name),
                _ => assert!(!spec.name.ends_with("_total"), "{}", spec.name),
            }
        }
    }
}
