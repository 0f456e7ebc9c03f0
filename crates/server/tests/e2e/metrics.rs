//! `GET /metrics`: guarded by its token, never rate limited, and its counters move by exactly
//! what real requests and executions did; every exposed metric is in the documented catalogue.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Client, Server};

const TOKEN: &str = "scrape-secret-for-tests";
const DEADLINE: Duration = Duration::from_secs(120);

/// A metric, the labels a sample must carry, and how far its value must have moved.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// One scrape: every sample by name and labels.
struct Samples(Vec<(String, BTreeMap<String, String>, f64)>);

impl Samples {
    fn parse(text: &str) -> Samples {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = value.parse().expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label pair");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            samples.push((name.to_owned(), labels, value));
        }
        Samples(samples)
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

async fn scrape(server: &Server) -> (Samples, String) {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    (Samples::parse(&text), text)
}

/// Scrapes until `moved` holds (the counters of a run are recorded a moment after its result is
/// readable); returns the last scrape.
async fn scrape_until(server: &Server, moved: impl Fn(&Samples) -> bool) -> Samples {
    let start = Instant::now();
    loop {
        let (samples, _) = scrape(server).await;
        if moved(&samples) || start.elapsed() > DEADLINE {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_need_their_token_and_count_what_happened() {
    let server = Server::start(&[
        ("INTEGR8S_METRICS__TOKEN", TOKEN),
        ("INTEGR8S_RATE_LIMIT__ENABLED", "true"),
    ])
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    let anonymous = http.get(&url).send().await.expect("scrape");
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.expect("error body");
    assert!(body["detail"].is_string(), "{body}");
    let wrong = http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let user = server.user().await;
    let (before, _) = scrape(&server).await;

    // Two runs that succeed, one that exits with 3 (completed, as a script error), and a
    // submission repeated under one key.
    for _ in 0..2 {
        assert_eq!(user.run("print('ok')").await["status"], "completed");
    }
    let exited = user.run("import sys\nsys.exit(3)").await;
    assert_eq!(exited["exit_code"], 3, "{exited}");
    let keyed = |key: &'static str| {
        user.http
            .post(format!("{}/api/v1/execute", user.base))
            .header("X-CSRF-Token", &user.csrf)
            .header("Idempotency-Key", key)
            .json(&json!({"script": "print('keyed')", "lang": "python", "lang_version": "3.11"}))
    };
    let first = user.send(keyed("metrics-key-1")).await;
    let again = user.send(keyed("metrics-key-1")).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.body["execution_id"], first.body["execution_id"]);
    let keyed_id = first.body["execution_id"].as_str().unwrap().to_owned();
    let frames = user
        .sse(&format!("/api/v1/events/executions/{keyed_id}"))
        .await
        .len();
    assert!(frames > 0);
    // A sign-in with a wrong password, and a path no route matches.
    assert!(Client::login(&server.base, "user", "wrong-password")
        .await
        .is_err());
    assert_eq!(user.get("/api/v1/no-such-thing").await.status, 404);

    let delta = |after: &Samples, name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let after = scrape_until(&server, |s| {
        s.value("script_executions_total", &[("status", "completed")])
            - before.value("script_executions_total", &[("status", "completed")])
            >= 4.0
    })
    .await;

    let stream = "/api/v1/events/executions/{execution_id}";
    let expected: &[Expected<'_>] = &[
        ("script_executions_total", &[("status", "completed")], 4.0),
        ("script_executions_total", &[("status", "failed")], 0.0),
        (
            "script_errors_total",
            &[("error_type", "script_error")],
            1.0,
        ),
        ("sandbox_runs_total", &[("outcome", "exited_zero")], 3.0),
        ("sandbox_runs_total", &[("outcome", "exited_nonzero")], 1.0),
        ("idempotency_duplicates_blocked_total", &[], 1.0),
        (
            "events_published_total",
            &[("event_type", "execution_requested")],
            4.0,
        ),
        (
            "events_published_total",
            &[("event_type", "result_stored")],
            4.0,
        ),
        ("authentication_attempts_total", &[], 1.0),
        (
            "authentication_failures_total",
            &[("reason", "credentials")],
            1.0,
        ),
        (
            "http_requests_total",
            &[
                ("method", "POST"),
                ("path", "/api/v1/execute"),
                ("status", "200"),
            ],
            5.0,
        ),
        (
            "http_requests_total",
            &[("method", "GET"), ("path", "unmatched"), ("status", "404")],
            1.0,
        ),
        (
            "sse_messages_sent_total",
            &[("stream", stream)],
            frames as f64,
        ),
        ("sse_connections_active", &[("stream", stream)], 0.0),
    ];
    let mut wrong = Vec::new();
    for (name, labels, want) in expected {
        let got = delta(&after, name, labels);
        if (got - want).abs() > f64::EPSILON {
            wrong.push(format!("{name}{labels:?}: moved by {got}, expected {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Rate limiting is on: requests were checked, none refused; scrapes are not counted.
    assert!(delta(&after, "rate_limit_allowed_total", &[]) >= 5.0);
    assert_eq!(delta(&after, "rate_limit_rejected_total", &[]), 0.0);
    assert_eq!(
        delta(
            &after,
            "http_requests_total",
            &[("path", "/metrics"), ("status", "429")]
        ),
        0.0
    );
    // The handlers of every consuming role were timed.
    for group in [
        "coordinator",
        "saga-orchestrator",
        "local-worker",
        "result-processor",
    ] {
        assert!(
            delta(
                &after,
                "event_processing_duration_seconds_count",
                &[("group", group)]
            ) > 0.0,
            "{group} handled nothing"
        );
    }
    // The queue gauges are set by the coordinator's tick.
    let with_queue = scrape_until(&server, |s| {
        s.0.iter().any(|(n, _, _)| n == "execution_queue_depth")
    })
    .await;
    assert_eq!(with_queue.value("execution_queue_depth", &[]), 0.0);
    assert!(
        with_queue.value("execution_queue_wait_time_seconds_count", &[]) >= 4.0,
        "queue waits not recorded"
    );
}

#[tokio::test]
async fn every_exposed_metric_is_in_the_catalogue_with_its_kind() {
    let server = Server::start(&[("INTEGR8S_METRICS__TOKEN", TOKEN)]).await;
    let user = server.user().await;
    assert_eq!(user.run("print(1)").await["status"], "completed");
    let (_, text) = scrape(&server).await;
    let catalogue: BTreeMap<&str, &str> = integr8s_telemetry::CATALOGUE
        .iter()
        .map(|spec| (spec.name, spec.kind.as_str()))
        .collect();
    let mut exposed = 0;
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line["# TYPE ".len()..].split(' ');
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(
            catalogue.get(name).copied(),
            Some(kind),
            "{name} ({kind}) is exposed but not in the catalogue with that kind"
        );
        exposed += 1;
    }
    assert!(exposed >= 10, "only {exposed} metrics exposed:\n{text}");
}
