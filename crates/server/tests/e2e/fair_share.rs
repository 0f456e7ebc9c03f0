//! Fair share through the real server: a user with a long backlog does not make another user
//! wait behind all of it. The order of the runs' `execution_started` events is compared, never
//! a duration.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::harness::{Client, Server, DEADLINE};

const SLOW: &str = "import time\ntime.sleep(0.5)\nprint('done')";

async fn event_time(c: &Client, id: &str, event_type: &str) -> Option<DateTime<Utc>> {
    let r = c
        .get(&format!(
            "/api/v1/executions/{id}/events?event_types={event_type}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .as_array()?
        .first()?
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

async fn status(c: &Client, id: &str) -> String {
    c.result(id).await["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_backlog_of_fifty_does_not_hold_back_another_users_run() {
    // One user may hold every slot: the fairness under test is the queue's order.
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "2"),
        ("INTEGR8S_EXECUTION__MAX_PER_USER", "2"),
    ])
    .await;
    let a = s.new_user("backlog").await;
    let b = s.new_user("latecomer").await;
    let mut backlog = Vec::new();
    for _ in 0..50 {
        backlog.push(a.submit(SLOW).await);
    }
    // Wait until A's runs hold both slots and the rest of the backlog waits.
    let start = Instant::now();
    loop {
        let mut running = 0;
        for id in &backlog[..4] {
            if status(&a, id).await == "running" {
                running += 1;
            }
        }
        if running >= 2 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "A's runs never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let r = b
        .post(
            "/api/v1/execute",
            json!({"script": SLOW, "lang": "python", "lang_version": "3.11"}),
        )
        .await;
    assert_eq!(r.status, 200, "B is never refused: {}", r.body);
    let mine = r.body["execution_id"].as_str().unwrap().to_owned();
    let done = b.wait_terminal(&mine).await;
    assert_eq!(done["status"], "completed", "{done}");

    let submitted = event_time(&b, &mine, "execution_requested")
        .await
        .expect("requested");
    let started = event_time(&b, &mine, "execution_started")
        .await
        .expect("started");
    let mut a_started_between = 0;
    let mut a_started = 0;
    for id in &backlog {
        if let Some(t) = event_time(&a, id, "execution_started").await {
            a_started += 1;
            if t > submitted && t < started {
                a_started_between += 1;
            }
        }
    }
    // At most one run per slot may have been on its way when B arrived; served in order of
    // submission B would have waited for dozens.
    assert!(
        a_started_between <= 2,
        "{a_started_between} of A's runs started between B's submission and B's start"
    );
    assert!(a_started < 50, "B ran before A's backlog was through");
    for id in backlog {
        a.post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
            .await;
    }
}
