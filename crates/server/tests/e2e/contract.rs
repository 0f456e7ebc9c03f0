//! What clients of the original system see: the pod lifecycle events of a run in the original's
//! order and shapes, an exit code for every outcome (never `null` once finished), one
//! `execution_cancelled` per cancel and no `result_stored` for it, and seeded accounts whose
//! addresses pass e-mail validators while registration refuses special-use domains.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{script_processes, Client, Server, DEADLINE};

/// The execution's stored events, oldest first.
async fn events(c: &Client, id: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/api/v1/executions/{id}/events?limit=1000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().expect("event list").clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default())
        .collect()
}

fn position(types: &[&str], t: &str) -> usize {
    types
        .iter()
        .position(|x| *x == t)
        .unwrap_or_else(|| panic!("no {t} in {types:?}"))
}

fn one<'a>(events: &'a [Value], t: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["event_type"] == t).collect();
    assert_eq!(found.len(), 1, "{t} in {:?}", types(events));
    found[0]
}

async fn submit(c: &Client, body: Value) -> String {
    let r = c.post("/api/v1/execute", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["execution_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_run_emits_the_pod_lifecycle_in_the_original_order_and_shapes() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "60"),
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
    ])
    .await;
    let u = s.user().await;
    // The run waits behind another until its stream is open, so the stream sees it all live.
    let blocker = occupy_the_slot(&s, &u).await;
    let id = u.submit("print('pods')").await;
    let stream = follow(&u, &id).await;
    let r = u
        .post(&format!("/api/v1/executions/{blocker}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let frames = stream.await.expect("stream task");
    assert_eq!(frames[0]["status"], "queued", "{frames:?}");
    let streamed = types(&frames);
    // Clients wait for `pod_created` to know the run was placed; the stream relays it.
    for t in ["pod_created", "pod_scheduled", "pod_running"] {
        assert!(streamed.contains(&t), "{t} not streamed: {streamed:?}");
    }
    assert_eq!(streamed.last(), Some(&"result_stored"));

    let all = events(&u, &id).await;
    let order = types(&all);
    let at = |t: &str| position(&order, t);
    assert!(at("create_pod_command") < at("pod_created"), "{order:?}");
    assert!(at("pod_created") < at("pod_scheduled"), "{order:?}");
    assert!(at("pod_scheduled") < at("pod_running"), "{order:?}");
    assert!(at("pod_running") < at("execution_completed"), "{order:?}");
    assert!(at("execution_completed") < at("pod_succeeded"), "{order:?}");
    assert!(at("pod_succeeded") < at("pod_deleted"), "{order:?}");
    assert!(
        at("execution_started") < at("execution_completed"),
        "{order:?}"
    );

    let created = one(&all, "pod_created");
    let pod_name = created["pod_name"].as_str().expect("pod_name");
    assert!(
        pod_name.starts_with("sandbox-slot-"),
        "the name says it is a sandbox slot, not a pod: {pod_name}"
    );
    assert!(!pod_name.contains(&id), "no invented pod name: {pod_name}");
    assert_eq!(created["namespace"], "local-sandbox");
    assert_eq!(created["execution_id"], id.as_str());
    assert_eq!(created["aggregate_id"], id.as_str());
    assert!(created["metadata"]["service_name"].is_string());
    let scheduled = one(&all, "pod_scheduled");
    assert_eq!(scheduled["pod_name"], pod_name);
    assert!(scheduled["node_name"].is_string());
    let running = one(&all, "pod_running");
    let statuses = running["container_statuses"].as_array().expect("list");
    assert_eq!(statuses.len(), 1, "{running}");
    assert!(statuses[0]["name"].is_string() && statuses[0]["state"] == "running");
    assert_eq!(statuses[0]["ready"], true);
    assert_eq!(statuses[0]["restart_count"], 0);
    let succeeded = one(&all, "pod_succeeded");
    assert_eq!(succeeded["exit_code"], 0);
    assert_eq!(succeeded["pod_name"], pod_name);
    let deleted = one(&all, "pod_deleted");
    assert_eq!(deleted["pod_name"], pod_name);
    for t in ["execution_started", "execution_running"] {
        assert_eq!(one(&all, t)["pod_name"], pod_name, "{t}");
    }

    // A failing script ends its pod as failed, a timed-out one as terminated.
    let failed = u.submit("import sys\nsys.exit(3)").await;
    u.wait_terminal(&failed).await;
    let all = events(&u, &failed).await;
    let pod = one(&all, "pod_failed");
    assert_eq!(pod["exit_code"], 3);
    assert!(pod["reason"].is_string());
    let timed_out = submit(
        &u,
        json!({"script": "import time\ntime.sleep(30)", "timeout_seconds": 1}),
    )
    .await;
    u.wait_terminal(&timed_out).await;
    let all = events(&u, &timed_out).await;
    let order = types(&all);
    assert!(position(&order, "execution_timeout") < position(&order, "pod_terminated"));
    let pod = one(&all, "pod_terminated");
    assert_eq!(pod["exit_code"], -1);
    assert_eq!(pod["reason"], "DeadlineExceeded");
    one(&all, "pod_deleted");
}

#[tokio::test]
async fn every_ended_execution_has_an_exit_code_in_its_result_and_stream() {
    let s = Server::start(&[("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "20")]).await;
    let u = s.user().await;
    let id = submit(
        &u,
        json!({"script": "import time\ntime.sleep(30)", "timeout_seconds": 1}),
    )
    .await;
    let r = u.wait_terminal(&id).await;
    assert_eq!(r["status"], "timeout", "{r}");
    assert_eq!(r["exit_code"], -1, "{r}");
    let frames = u.sse(&format!("/api/v1/events/executions/{id}")).await;
    let last = frames.last().expect("frames");
    assert_eq!(last["event_type"], "result_stored", "{frames:?}");
    assert_eq!(last["result"]["exit_code"], -1, "{last}");

    // Limits kill the run: 128 + SIGKILL, as a killed container reports.
    for body in [
        json!({"script": "x = bytearray(200 * 1024 * 1024)\nprint(len(x))", "memory_mb": 64}),
        json!({"script": "while True:\n    print('y' * 100)", "max_output_bytes": 4096}),
    ] {
        let id = submit(&u, body.clone()).await;
        let r = u.wait_terminal(&id).await;
        assert_eq!(r["error_type"], "resource_limit", "{body}: {r}");
        assert_eq!(r["exit_code"], 137, "{body}: {r}");
    }

    // Our document says so: the result frame's exit code is an integer, never null.
    let doc = reqwest::get(format!("{}/openapi.json", s.base))
        .await
        .expect("openapi")
        .json::<Value>()
        .await
        .expect("json");
    let exit_code = &doc["components"]["schemas"]["SseExecutionResult"]["properties"]["exit_code"];
    assert_eq!(exit_code["type"], "integer", "{exit_code}");
    let stream = &doc["paths"]["/api/v1/events/executions/{execution_id}"]["get"]["responses"]
        ["200"]["content"]["text/event-stream"]["schema"];
    assert_eq!(
        stream["$ref"], "#/components/schemas/SseExecutionEvent",
        "{stream}"
    );
}

#[tokio::test]
async fn a_system_error_reports_exit_code_minus_one() {
    let s = Server::start(&[("INTEGR8S_SANDBOX__BWRAP", "/nonexistent/bwrap")]).await;
    let u = s.user().await;
    let id = u.submit("print(1)").await;
    let r = u.wait_terminal(&id).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error_type"], "system_error", "{r}");
    assert_eq!(r["exit_code"], -1, "{r}");
    let frames = u.sse(&format!("/api/v1/events/executions/{id}")).await;
    assert_eq!(frames.last().expect("frames")["result"]["exit_code"], -1);
    // Nothing was placed: no pod events for a run that never got a sandbox.
    let all = events(&u, &id).await;
    assert!(
        !types(&all).iter().any(|t| t.starts_with("pod_")),
        "{:?}",
        types(&all)
    );
}

/// Opens the execution's stream (subscribed once this returns) and hands back a task that
/// yields its frames when the stream ends.
async fn follow(c: &Client, id: &str) -> tokio::task::JoinHandle<Vec<Value>> {
    let r = c
        .http
        .get(format!("{}/api/v1/events/executions/{id}", c.base))
        .header("Cookie", &c.cookie)
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 200);
    tokio::spawn(async move {
        let text = tokio::time::timeout(DEADLINE, r.text())
            .await
            .expect("the stream closes")
            .expect("body");
        text.split('\n')
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("frame"))
            .collect()
    })
}

/// Submits a script that runs until cancelled and waits until the script itself is up.
async fn occupy_the_slot(s: &Server, c: &Client) -> String {
    let id = c
        .submit("import time\nprint('up', flush=True)\ntime.sleep(50)")
        .await;
    c.wait_for(&id, |st| st == "running").await;
    let start = Instant::now();
    while script_processes(s.pid()).is_empty() {
        assert!(start.elapsed() < DEADLINE, "the script never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    id
}

#[tokio::test]
async fn a_cancel_stores_one_event_and_no_result_stored() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "60"),
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
    ])
    .await;
    let u = s.user().await;
    let running = occupy_the_slot(&s, &u).await;
    // With the one slot taken, this one waits in the queue.
    let queued = u.submit("print('never')").await;
    let stream = follow(&u, &running).await;

    let r = u
        .post(
            &format!("/api/v1/executions/{queued}/cancel"),
            json!({"reason": "not needed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancellation_requested");
    let r = u
        .post(&format!("/api/v1/executions/{running}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["event_id"].is_string(), "{}", r.body);

    for (id, forced) in [(&running, true), (&queued, false)] {
        let done = u.wait_terminal(id).await;
        assert_eq!(done["status"], "cancelled", "{done}");
        assert_eq!(done["exit_code"], -1, "{done}");
        // The pipeline is over once the cancel is stored; give a stray event time to show.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = events(&u, id).await;
        let cancel = one(&all, "execution_cancelled");
        assert_eq!(cancel["force_terminated"], forced, "{cancel}");
        assert!(!types(&all).contains(&"result_stored"), "{:?}", types(&all));
    }
    let frames = stream.await.expect("stream task");
    let last = frames.last().expect("frames");
    assert_eq!(last["event_type"], "execution_cancelled", "{frames:?}");
    assert!(!types(&frames).contains(&"result_stored"));

    // A stream opened afterwards shows the status and the cancel, then ends.
    let frames = u.sse(&format!("/api/v1/events/executions/{running}")).await;
    assert_eq!(types(&frames), ["status", "execution_cancelled"]);
    assert_eq!(frames[0]["status"], "cancelled");
}

#[tokio::test]
async fn seeded_addresses_are_valid_and_special_use_domains_are_refused() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let users = admin.get("/api/v1/admin/users/").await;
    assert_eq!(users.status, 200, "{}", users.body);
    let emails: Vec<&str> = users.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&"admin@example.com"), "{emails:?}");
    assert!(emails.contains(&"user@example.com"), "{emails:?}");

    let http = reqwest::Client::new();
    for (i, domain) in [
        "integr8s.local",
        "x.test",
        "localhost",
        "a.localhost",
        "b.invalid",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"username": format!("special{i}"), "email": format!("someone@{domain}"), "password": "password123"});
        let r = http
            .post(format!("{}/api/v1/auth/register", s.base))
            .json(&body)
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 422, "{domain}");
        let body: Value = r.json().await.expect("json");
        let detail = &body["detail"][0];
        assert_eq!(detail["loc"], json!(["body", "email"]), "{body}");
        assert_eq!(detail["type"], "value_error", "{body}");
        assert!(
            detail["msg"]
                .as_str()
                .unwrap_or_default()
                .starts_with("value is not a valid email address"),
            "{body}"
        );
    }
    let r = admin
        .post(
            "/api/v1/admin/users/",
            json!({"username": "special-admin", "email": "boss@corp.local", "password": "password123"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // A normal domain registers.
    s.new_user("normal-domain").await;
}
