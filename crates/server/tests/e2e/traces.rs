//! Traces and logs of the real binary: spans exported over OTLP/HTTP to a receiver in the test
//! (the protocol's protobuf messages), one trace per execution from the HTTP request through
//! every hop (also with the roles in separate processes over Kafka), JSON log lines that carry
//! the trace, the monitoring system settings applied at runtime, and secrets kept out of logs.

use serde_json::{json, Value};

use crate::harness::{Client, Server};
use crate::otlp::{ReceivedSpan, Receiver};

/// The spans of one execution's trace: the HTTP request and each hop of the pipeline.
pub const HOPS: [&str; 7] = [
    "POST /api/v1/execute",
    "coordinator execution_requested",
    "coordinator schedule",
    "saga-orchestrator execution_accepted",
    "local-worker create_pod_command",
    "run",
    "result-processor execution_completed",
];

/// A W3C trace context with a fresh trace id and the sampled flag; returns (header, trace id,
/// parent span id).
pub fn new_traceparent() -> (String, String, String) {
    let trace_id = integr8s_core::new_id().replace('-', "");
    let parent = trace_id[..16].to_owned();
    (format!("00-{trace_id}-{parent}-01"), trace_id, parent)
}

/// Submits a Python script with `traceparent` (if any); returns the execution id.
pub async fn submit_traced(client: &Client, script: &str, traceparent: Option<&str>) -> String {
    let mut req = client
        .http
        .post(format!("{}/api/v1/execute", client.base))
        .header("X-CSRF-Token", &client.csrf)
        .json(&json!({"script": script, "lang": "python", "lang_version": "3.11"}));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let r = client.send(req).await;
    assert_eq!(r.status, 200, "execute: {}", r.body);
    r.body["execution_id"]
        .as_str()
        .expect("execution_id")
        .to_owned()
}

pub fn has_every_hop(spans: &[ReceivedSpan]) -> bool {
    HOPS.iter().all(|hop| spans.iter().any(|s| s.name == *hop))
}

/// Every span hangs from the caller's span or from another span of the trace.
pub fn assert_one_tree(spans: &[ReceivedSpan], caller_span: &str) {
    for s in spans {
        assert!(
            s.parent_span_id == caller_span || spans.iter().any(|p| p.span_id == s.parent_span_id),
            "span {} ({}) hangs from {} outside the trace",
            s.name,
            s.service,
            s.parent_span_id
        );
    }
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test]
async fn one_trace_follows_an_execution_from_the_request_through_every_hop() {
    let receiver = Receiver::start().await;
    let s = Server::start_logged(&[
        ("INTEGR8S_TELEMETRY__OTLP_ENDPOINT", &receiver.endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("INTEGR8S_SERVER__LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let u = s.user().await;
    let (traceparent, trace_id, caller) = new_traceparent();
    let id = submit_traced(&u, "print(6 * 7)", Some(&traceparent)).await;
    let r = u.wait_terminal(&id).await;
    assert_eq!(r["status"], "completed", "{r}");

    let spans = receiver.wait_for(&trace_id, has_every_hop).await;
    assert_one_tree(&spans, &caller);
    let request = spans
        .iter()
        .find(|s| s.name == HOPS[0])
        .expect("request span");
    assert_eq!(request.parent_span_id, caller, "the request continues the caller's span");
    assert_eq!(request.attribute("http.route"), Some("/api/v1/execute"));
    assert!(spans.iter().all(|s| s.service == "integr8s"), "{spans:#?}");
    for hop in &HOPS[1..] {
        let span = spans.iter().find(|s| s.name == *hop).expect("hop");
        if *hop != "coordinator schedule" && *hop != "run" {
            assert_eq!(span.attribute("execution_id"), Some(id.as_str()), "{hop}");
        }
    }

    // The stored events carry the trace context for the next hop.
    let events = u.get(&format!("/api/v1/executions/{id}/events?limit=100")).await;
    assert_eq!(events.status, 200, "{}", events.body);
    let list = events.body.as_array().cloned().unwrap_or_default();
    assert!(list.len() >= 5, "{list:#?}");
    for e in &list {
        let tp = e["metadata"]["traceparent"].as_str().unwrap_or_default();
        assert!(tp.contains(&trace_id), "{e:#}");
    }

    // JSON log lines written inside the trace carry its ids.
    let span_ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let lines = json_lines(&s.log());
    let traced: Vec<&Value> = lines
        .iter()
        .filter(|l| l["trace_id"] == trace_id.as_str())
        .collect();
    assert!(
        traced
            .iter()
            .any(|l| l["fields"]["message"] == "execution scheduled"),
        "{traced:#?}"
    );
    assert!(traced
        .iter()
        .all(|l| l["span_id"].as_str().is_some_and(|id| span_ids.contains(&id))));

    // A request without a trace context starts a trace of its own (sampled at the configured
    // rate; the one below carries the sampled flag of its caller's context).
    let (traceparent2, trace2, caller2) = new_traceparent();
    let id2 = submit_traced(&u, "print(1)", Some(&traceparent2)).await;
    u.wait_terminal(&id2).await;
    let spans2 = receiver.wait_for(&trace2, has_every_hop).await;
    assert_one_tree(&spans2, &caller2);
    assert!(spans2.iter().all(|s| s.trace_id != trace_id));
}

#[tokio::test]
async fn without_an_endpoint_events_carry_no_trace_context_and_logs_no_ids() {
    let s = Server::start_logged(&[
        ("INTEGR8S_SERVER__LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let u = s.user().await;
    let (traceparent, trace_id, _) = new_traceparent();
    let id = submit_traced(&u, "print(2)", Some(&traceparent)).await;
    assert_eq!(u.wait_terminal(&id).await["status"], "completed");
    let events = u.get(&format!("/api/v1/executions/{id}/events?limit=100")).await;
    assert_eq!(events.status, 200, "{}", events.body);
    let list = events.body.as_array().cloned().unwrap_or_default();
    assert!(!list.is_empty());
    assert!(list.iter().all(|e| e["metadata"].get("traceparent").is_none()));
    let log = s.log();
    assert!(log.contains("execution scheduled"));
    assert!(!log.contains("trace_id") && !log.contains(&trace_id));
}
