//! `POST /api/v1/execute?wait=true` (integr8s extension): the result in one round trip.

use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};

async fn execute_waiting(u: &Client, body: Value) -> Resp {
    u.post("/api/v1/execute?wait=true", body).await
}

fn python(script: &str) -> Value {
    json!({"script": script, "lang": "python", "lang_version": "3.11"})
}

#[tokio::test]
async fn waiting_submit_answers_with_the_result() {
    let s = Server::start(&[]).await;
    let u = s.user().await;

    let r = execute_waiting(&u, python("print('one round trip')")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "completed", "{}", r.body);
    assert_eq!(r.body["stdout"], "one round trip\n");
    assert_eq!(r.body["exit_code"], 0);
    assert_eq!(r.body["lang"], "python");
    // The same result as the contract's result endpoint gives.
    let id = r.body["execution_id"].as_str().unwrap();
    assert_eq!(u.result(id).await, r.body);

    let r = execute_waiting(
        &u,
        python("import sys\nprint('no', file=sys.stderr)\nsys.exit(3)"),
    )
    .await;
    assert_eq!(r.body["status"], "completed", "{}", r.body);
    assert_eq!(r.body["exit_code"], 3);
    assert_eq!(r.body["stderr"], "no\n");

    // A run stopped at its time limit ends the wait with its outcome.
    let mut slow = python("import time\ntime.sleep(30)");
    slow["timeout_seconds"] = json!(1);
    let r = execute_waiting(&u, slow).await;
    assert_eq!(r.body["status"], "timeout", "{}", r.body);

    // Without `wait` (or with `wait=false`) the contract's answer is unchanged.
    for path in ["/api/v1/execute", "/api/v1/execute?wait=false"] {
        let r = u.post(path, python("print(1)")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["execution_id", "status"], "{}", r.body);
        assert_eq!(r.body["status"], "queued");
    }
}

#[tokio::test]
async fn waiting_is_bounded_and_refused_beyond_the_stream_caps() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
        ("INTEGR8S_EXECUTION__MAX_PER_USER", "1"),
        ("INTEGR8S_STREAMS__MAX_OPEN_PER_USER", "1"),
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "60"),
    ])
    .await;
    let u = s.user().await;

    let r = u
        .post("/api/v1/execute?wait=maybe", python("print(1)"))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "wait"]));

    // The only slot is busy for the whole wait, so the next run stays queued: the wait ends after
    // the run's own limit plus the grace, with the status it has then.
    let r = u
        .post("/api/v1/execute", python("import time\ntime.sleep(60)"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let busy_id = r.body["execution_id"].as_str().unwrap().to_owned();
    u.wait_for(&busy_id, |st| st == "running").await;

    let mut queued = python("print('later')");
    queued["timeout_seconds"] = json!(1);
    let waiter = {
        let u = u.clone();
        tokio::spawn(async move { execute_waiting(&u, queued).await })
    };
    // The waiting request takes its stream before it submits: once its execution is listed,
    // it holds the user's one stream, so a second waiting submit is refused before anything
    // is submitted.
    let total = || async { u.get("/api/v1/user/executions").await.body["total"].clone() };
    while total().await != json!(2) {
        assert!(!waiter.is_finished(), "the waiting submit answered early");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let refused = execute_waiting(&u, python("print(2)")).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("stream"),
        "{}",
        refused.body
    );
    assert_eq!(total().await, json!(2), "the refused submit stored nothing");

    let r = waiter.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    assert!(r.body["exit_code"].is_null(), "{}", r.body);
    let r = u
        .post(&format!("/api/v1/executions/{busy_id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
