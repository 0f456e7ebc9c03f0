//! Sagas over HTTP: read and list with owner scoping, and cancel that really stops the run.

use std::time::{Duration, Instant};

use integr8s_core::ports::AllocationStore;
use serde_json::{json, Value};

use crate::harness::{descendants, waiting_interpreter, Client, Server, DEADLINE};

/// Polls the execution's sagas until one exists and `done(state)` holds; returns it.
async fn wait_saga(c: &Client, execution_id: &str, done: impl Fn(&str) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = c
            .get(&format!("/api/v1/sagas/execution/{execution_id}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(saga) = r.body["sagas"].as_array().and_then(|s| s.first()) {
            if done(saga["state"].as_str().unwrap_or_default()) {
                return saga.clone();
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "saga of {execution_id} stuck: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's descendants that run the Python script (bubblewraps kept warm for the next
/// run are not scripts, nor interpreters started ahead that wait for their run).
fn script_processes(pid: u32) -> Vec<String> {
    descendants(pid)
        .into_iter()
        .filter(|p| !waiting_interpreter(*p))
        .filter_map(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmd| cmd.contains("python"))
        .collect()
}

#[tokio::test]
async fn sagas_are_visible_to_their_owner_and_admins_only() {
    let s = Server::start(&[]).await;
    let alice = s.new_user("alice").await;
    let bob = s.new_user("bob").await;
    let id = alice.submit("print('saga')").await;
    alice.wait_terminal(&id).await;
    let saga = wait_saga(&alice, &id, |st| st == "completed").await;
    let saga_id = saga["saga_id"].as_str().expect("saga_id").to_owned();
    assert_eq!(saga["saga_name"], "execution_saga");
    assert_eq!(saga["execution_id"], id.as_str());
    assert_eq!(
        saga["completed_steps"],
        json!(["validate_execution", "allocate_resources", "create_pod"])
    );
    for key in [
        "current_step",
        "compensated_steps",
        "error_message",
        "created_at",
        "updated_at",
        "completed_at",
        "retry_count",
    ] {
        assert!(saga.get(key).is_some(), "missing {key}: {saga}");
    }

    let got = alice.get(&format!("/api/v1/sagas/{saga_id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, saga);

    let list = alice.get("/api/v1/sagas/").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 1);
    assert_eq!(
        (
            list.body["skip"].clone(),
            list.body["limit"].clone(),
            list.body["has_more"].clone()
        ),
        (json!(0), json!(100), json!(false))
    );
    let filtered = alice
        .get(&format!("/api/v1/sagas/?state=completed&execution_id={id}"))
        .await;
    assert_eq!(filtered.body["total"], 1, "{}", filtered.body);
    assert_eq!(
        alice.get("/api/v1/sagas/?state=running").await.body["total"],
        0
    );
    let page = alice.get("/api/v1/sagas/?limit=1&skip=1").await;
    assert_eq!(
        (
            page.body["sagas"].as_array().map(Vec::len),
            page.body["has_more"].clone()
        ),
        (Some(0), json!(false))
    );

    // Bob sees none of it.
    let r = bob.get(&format!("/api/v1/sagas/{saga_id}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["detail"], "Access denied");
    assert_eq!(
        bob.get(&format!("/api/v1/sagas/execution/{id}"))
            .await
            .status,
        403
    );
    assert_eq!(
        bob.get(&format!("/api/v1/sagas/?execution_id={id}"))
            .await
            .status,
        403
    );
    assert_eq!(
        bob.post(&format!("/api/v1/sagas/{saga_id}/cancel"), json!({}))
            .await
            .status,
        403
    );
    let own = bob.get("/api/v1/sagas/").await;
    assert_eq!((own.status, own.body["total"].clone()), (200, json!(0)));

    // Admins see every saga.
    let admin = s.admin().await;
    assert_eq!(
        admin.get(&format!("/api/v1/sagas/{saga_id}")).await.status,
        200
    );
    let all = admin.get("/api/v1/sagas/").await;
    assert_eq!(all.body["total"], 1, "{}", all.body);
    assert_eq!(
        admin
            .get(&format!("/api/v1/sagas/execution/{id}"))
            .await
            .body["total"],
        1
    );

    // A finished saga cannot be cancelled.
    let r = alice
        .post(&format!("/api/v1/sagas/{saga_id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["detail"].is_string());
}

#[tokio::test]
async fn unknown_sagas_bad_queries_and_anonymous_callers() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let r = u.get("/api/v1/sagas/no-such-saga").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body["detail"].is_string());
    assert_eq!(
        u.post("/api/v1/sagas/no-such-saga/cancel", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        u.get("/api/v1/sagas/execution/no-such-execution")
            .await
            .status,
        403
    );
    for query in [
        "limit=0",
        "limit=1001",
        "skip=-1",
        "state=sleeping",
        "limit=many",
    ] {
        let r = u.get(&format!("/api/v1/sagas/?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert!(r.body["detail"].is_array());
    }

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirect
        .get(format!("{}/api/v1/sagas?limit=5", s.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/api/v1/sagas/?limit=5");

    let anon = reqwest::Client::new();
    for path in [
        "/api/v1/sagas/",
        "/api/v1/sagas/x",
        "/api/v1/sagas/execution/x",
    ] {
        let r = anon
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn cancelling_a_saga_stops_its_run_and_compensates() {
    let s = Server::start(&[("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "60")]).await;
    let u = s.user().await;
    let id = u
        .submit("import time\nprint('sleeping', flush=True)\ntime.sleep(50)")
        .await;
    u.wait_for(&id, |st| st == "running").await;
    let saga = wait_saga(&u, &id, |st| st == "running").await;
    let start = Instant::now();
    while script_processes(s.pid()).is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "the run should be a child of the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let saga_id = saga["saga_id"].as_str().expect("saga_id").to_owned();

    let r = u
        .post(&format!("/api/v1/sagas/{saga_id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"success": true, "message": "Saga cancelled successfully", "saga_id": saga_id})
    );
    // The state a client reads right after the answer already says so.
    let read = u.get(&format!("/api/v1/sagas/{saga_id}")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["state"], "cancelled", "{}", read.body);
    assert!(read.body["completed_at"].is_string(), "{}", read.body);

    let done = u.wait_terminal(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let saga = wait_saga(&u, &id, |st| st != "running").await;
    assert_eq!(saga["state"], "cancelled", "{saga}");
    assert!(saga["completed_at"].is_string());
    let left = script_processes(s.pid());
    assert!(left.is_empty(), "processes left after the cancel: {left:?}");
    let store = crate::user_settings::open_store(&s).await;
    assert_eq!(
        store
            .active_allocations("python")
            .await
            .expect("allocations"),
        0,
        "allocation released"
    );

    let again = u
        .post(&format!("/api/v1/sagas/{saga_id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 400, "{}", again.body);

    // The slot and the allocation are free again: the next run completes.
    let next = u.run("print('after')").await;
    assert_eq!(next["status"], "completed", "{next}");
}
