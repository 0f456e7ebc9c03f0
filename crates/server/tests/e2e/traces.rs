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
    assert_eq!(
        request.parent_span_id, caller,
        "the request continues the caller's span"
    );
    assert_eq!(request.attribute("http.route"), Some("/api/v1/execute"));
    assert!(spans.iter().all(|s| s.service == "integr8s"), "{spans:#?}");
    // Probes and scrapes are not traced.
    let probe = reqwest::Client::new()
        .get(format!("{}/api/v1/health/live", s.base))
        .header("traceparent", &traceparent)
        .send()
        .await
        .expect("probe");
    assert_eq!(probe.status(), 200);
    for hop in &HOPS[1..] {
        let span = spans.iter().find(|s| s.name == *hop).expect("hop");
        if *hop != "coordinator schedule" && *hop != "run" {
            assert_eq!(span.attribute("execution_id"), Some(id.as_str()), "{hop}");
        }
    }

    // The stored events carry the trace context for the next hop.
    let events = u
        .get(&format!("/api/v1/executions/{id}/events?limit=100"))
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let list = events.body.as_array().cloned().unwrap_or_default();
    assert!(list.len() >= 5, "{list:#?}");
    for e in &list {
        let tp = e["metadata"]["traceparent"].as_str().unwrap_or_default();
        assert!(tp.contains(&trace_id), "{e:#}");
    }

    // JSON log lines written inside the trace carry its ids: each names a span of the trace
    // (one of a hop that ends after the spans above were collected arrives with the next
    // export).
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
    let logged: Vec<&str> = traced
        .iter()
        .map(|l| l["span_id"].as_str().unwrap_or_default())
        .collect();
    assert!(logged.iter().all(|id| !id.is_empty()), "{traced:#?}");
    receiver
        .wait_for(&trace_id, |spans| {
            logged
                .iter()
                .all(|id| spans.iter().any(|s| s.span_id == *id))
        })
        .await;

    // A request without a trace context starts a trace of its own (sampled at the configured
    // rate; the one below carries the sampled flag of its caller's context).
    let (traceparent2, trace2, caller2) = new_traceparent();
    let id2 = submit_traced(&u, "print(1)", Some(&traceparent2)).await;
    u.wait_terminal(&id2).await;
    let spans2 = receiver.wait_for(&trace2, has_every_hop).await;
    assert_one_tree(&spans2, &caller2);
    assert!(receiver
        .spans()
        .iter()
        .all(|s| !s.name.contains("/health") && !s.name.contains("/metrics")));
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
    let events = u
        .get(&format!("/api/v1/executions/{id}/events?limit=100"))
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let list = events.body.as_array().cloned().unwrap_or_default();
    assert!(!list.is_empty());
    assert!(list
        .iter()
        .all(|e| e["metadata"].get("traceparent").is_none()));
    let log = s.log();
    assert!(log.contains("execution scheduled"));
    assert!(!log.contains("trace_id") && !log.contains(&trace_id));
}

async fn put_settings(admin: &Client, body: Value) {
    let r = crate::admin_users::put(admin, "/api/v1/admin/settings/", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Waits until the log has `n` lines containing `needle`; returns the log's length then.
async fn wait_log(s: &Server, needle: &str, n: usize) -> usize {
    let deadline = std::time::Instant::now() + crate::harness::DEADLINE;
    loop {
        let log = s.log();
        if log.matches(needle).count() >= n {
            return log.len();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {n}× '{needle}' in the log:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn root_requests(receiver: &Receiver) -> usize {
    receiver
        .spans()
        .iter()
        .filter(|s| s.name == HOPS[0] && s.parent_span_id.is_empty())
        .count()
}

#[tokio::test]
async fn the_stored_log_level_tracing_switch_and_sampling_rate_take_effect_at_runtime() {
    let receiver = Receiver::start().await;
    let s = Server::start_logged(&[
        ("INTEGR8S_TELEMETRY__OTLP_ENDPOINT", &receiver.endpoint),
        ("INTEGR8S_TELEMETRY__SETTINGS_POLL_MS", "100"),
        ("INTEGR8S_TELEMETRY__SAMPLING_RATE", "1"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("INTEGR8S_SERVER__LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let admin = s.admin().await;
    let u = s.user().await;

    // Tracing off, debug lines on.
    put_settings(
        &admin,
        json!({"log_level": "DEBUG", "enable_tracing": false, "sampling_rate": 1.0}),
    )
    .await;
    wait_log(&s, "log level changed", 1).await;
    let (off, off_trace, _) = new_traceparent();
    let id = submit_traced(&u, "print(1)", Some(&off)).await;
    assert_eq!(u.wait_terminal(&id).await["status"], "completed");
    wait_log(&s, "\"saga step\"", 1).await;

    // Tracing on at rate 0 (a sampled caller is still followed), warnings only.
    put_settings(
        &admin,
        json!({"log_level": "WARNING", "enable_tracing": true, "sampling_rate": 0.0}),
    )
    .await;
    let quiet_from = wait_log(&s, "log level changed", 2).await;
    let unsampled = submit_traced(&u, "print(2)", None).await;
    assert_eq!(u.wait_terminal(&unsampled).await["status"], "completed");
    let (on, on_trace, on_caller) = new_traceparent();
    let id = submit_traced(&u, "print(3)", Some(&on)).await;
    assert_eq!(u.wait_terminal(&id).await["status"], "completed");
    let spans = receiver.wait_for(&on_trace, has_every_hop).await;
    assert_one_tree(&spans, &on_caller);
    // Spans leave in the order they end: those of the earlier executions would be here by now.
    assert!(receiver.spans().iter().all(|s| s.trace_id != off_trace));
    assert_eq!(
        root_requests(&receiver),
        0,
        "a new trace was sampled at rate 0"
    );
    let log = s.log();
    let quiet: Vec<Value> = json_lines(&log[quiet_from..])
        .into_iter()
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("integr8s"))
                && matches!(l["level"].as_str(), Some("INFO" | "DEBUG"))
        })
        .collect();
    assert!(quiet.is_empty(), "lines below WARNING: {quiet:#?}");

    // Rate 1: a request without a trace context starts a sampled trace.
    put_settings(
        &admin,
        json!({"log_level": "INFO", "enable_tracing": true, "sampling_rate": 1.0}),
    )
    .await;
    wait_log(&s, "log level changed", 3).await;
    let rooted = submit_traced(&u, "print(4)", None).await;
    assert_eq!(u.wait_terminal(&rooted).await["status"], "completed");
    let (last, last_trace, _) = new_traceparent();
    let id = submit_traced(&u, "print(5)", Some(&last)).await;
    assert_eq!(u.wait_terminal(&id).await["status"], "completed");
    receiver.wait_for(&last_trace, has_every_hop).await;
    assert_eq!(root_requests(&receiver), 1);
}

#[tokio::test]
async fn passwords_tokens_and_cookies_never_reach_the_log() {
    let pg_password = format!("pg-secret-{}", &integr8s_core::new_id()[..8]);
    let url = integr8s_store::testkit::PostgresServer::shared()
        .create_database()
        .await
        .expect("create database")
        .replacen(
            "postgres://integr8s@",
            &format!("postgres://integr8s:{pg_password}@"),
            1,
        );
    assert!(url.contains(&pg_password));
    let s = Server::start_logged(&[("INTEGR8S_DATABASE__URL", &url), ("RUST_LOG", "debug")]).await;

    let name = format!("redact{}", &integr8s_core::new_id()[..8]);
    let password = format!("pw-{}", integr8s_core::new_id());
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/auth/register", s.base))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200);
    let u = Client::login(&s.base, &name, &password)
        .await
        .expect("login");
    let session = u
        .cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("access_token="))
        .expect("session cookie")
        .to_owned();
    let bearer = format!("bearer-{}", integr8s_core::new_id());
    let query_token = format!("qt-{}", integr8s_core::new_id());
    let r = u
        .send(
            u.http
                .get(format!("{}/api/v1/auth/me?token={query_token}", u.base))
                .header("Authorization", format!("Bearer {bearer}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = u.submit("print('done')").await;
    assert_eq!(u.wait_terminal(&id).await["status"], "completed");

    let log = s.log();
    // Debug lines of the requests and of the store were written...
    assert!(log.contains("opening store"), "{log}");
    assert!(log.contains("/api/v1/auth/login"), "{log}");
    // ...without any secret.
    for secret in [&pg_password, &password, &session, &bearer, &query_token] {
        assert!(!log.contains(secret.as_str()), "secret {secret} in the log");
    }
}

#[tokio::test]
async fn one_trace_crosses_the_processes_of_a_scaled_out_deployment_over_kafka() {
    let receiver = Receiver::start().await;
    let mut d = crate::deployment::Deployment::new().await;
    d.set_env("INTEGR8S_TELEMETRY__OTLP_ENDPOINT", &receiver.endpoint);
    d.set_env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let names = d.start_all(&crate::deployment::PIPELINE).await;
    for name in &names {
        d.wait_ready(name).await;
    }
    let user = d.login("api-1", "user", "user123").await;
    let (traceparent, trace_id, caller) = new_traceparent();
    let id = submit_traced(&user, "print('traced')", Some(&traceparent)).await;
    assert_eq!(user.wait_terminal(&id).await["status"], "completed");
    let spans = receiver.wait_for(&trace_id, has_every_hop).await;
    assert_one_tree(&spans, &caller);
    let service_of = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.service.clone())
            .unwrap_or_default()
    };
    assert_eq!(service_of(HOPS[0]), "integr8s-api");
    assert_eq!(
        service_of("coordinator execution_requested"),
        "integr8s-coordinator"
    );
    assert_eq!(service_of("coordinator schedule"), "integr8s-coordinator");
    assert_eq!(
        service_of("saga-orchestrator execution_accepted"),
        "integr8s-saga-orchestrator"
    );
    assert_eq!(
        service_of("local-worker create_pod_command"),
        "integr8s-local-worker"
    );
    assert_eq!(service_of("run"), "integr8s-local-worker");
    assert_eq!(
        service_of("result-processor execution_completed"),
        "integr8s-result-processor"
    );
    for name in names.iter().rev() {
        let status = d.stop(name).await;
        assert!(status.success(), "{name} ended with {status}");
    }
}
