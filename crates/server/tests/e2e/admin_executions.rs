//! Admin execution views against the running binary: listing with filters, a priority change
//! that really reorders the queue (proved by the order of `execution_accepted` events), the
//! queue status, and the errors.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::admin_users::{put, user_id};
use crate::harness::{Client, Server, DEADLINE};

async fn wait_status(c: &Client, id: &str, wanted: &str) {
    let start = Instant::now();
    loop {
        let r = c.result(id).await;
        if r["status"] == wanted {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{id} never reached {wanted}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue(admin: &Client) -> Value {
    let r = admin.get("/api/v1/admin/executions/queue").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test]
async fn raising_a_priority_reorders_the_queue() {
    let env = [
        ("INTEGR8S_RATE_LIMIT__ENABLED", "false"),
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
    ];
    let server = Server::start(&env).await;
    let admin = server.admin().await;
    let user = server.user().await;

    let blocker = user.submit("import time\ntime.sleep(2)").await;
    wait_status(&user, &blocker, "running").await;
    let a = user.submit("print('a')").await;
    let b = user.submit("print('b')").await;
    // Both are in the queue before the change.
    let start = Instant::now();
    while queue(&admin).await["queue_depth"] != 2 {
        assert!(start.elapsed() < DEADLINE, "entries never queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let q = queue(&admin).await;
    assert_eq!(q["active_count"], 1);
    assert_eq!(q["max_concurrent"], 1);
    assert_eq!(q["by_priority"], json!({"normal": 2}));

    let r = put(
        &admin,
        &format!("/api/v1/admin/executions/{b}/priority"),
        json!({"priority": "high"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["priority"], "high");
    assert_eq!(r.body["execution_id"], b.as_str());
    assert_eq!(
        queue(&admin).await["by_priority"],
        json!({"normal": 1, "high": 1})
    );

    for id in [&blocker, &a, &b] {
        user.wait_terminal(id).await;
    }
    // B was submitted after A, yet it was scheduled first.
    let r = admin
        .post(
            "/api/v1/admin/events/browse",
            json!({"filters": {"event_types": ["execution_accepted"]}, "limit": 10}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let newest_first: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["execution_id"].as_str())
        .collect();
    assert_eq!(newest_first, [a.as_str(), b.as_str(), blocker.as_str()]);

    let r = admin
        .get(&format!(
            "/api/v1/admin/executions/?priority=high&user_id={}",
            user_id(&user).await
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["executions"][0]["execution_id"], b.as_str());
}

#[tokio::test]
async fn admin_lists_every_users_executions_and_rejects_bad_input() {
    let server = Server::start(&[("INTEGR8S_RATE_LIMIT__ENABLED", "false")]).await;
    let admin = server.admin().await;
    let user = server.user().await;
    let other = server.new_user("other").await;
    let mine = user.submit("print(1)").await;
    let theirs = other.submit("print(2)").await;
    user.wait_terminal(&mine).await;
    other.wait_terminal(&theirs).await;

    let r = admin.get("/api/v1/admin/executions/?limit=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["has_more"], true);
    assert_eq!(
        r.body["executions"][0]["execution_id"],
        theirs.as_str(),
        "newest first"
    );
    for key in [
        "script",
        "status",
        "lang",
        "lang_version",
        "stdout",
        "stderr",
        "exit_code",
        "error_type",
        "priority",
        "user_id",
        "created_at",
        "updated_at",
    ] {
        assert!(r.body["executions"][0].get(key).is_some(), "missing {key}");
    }
    let r = admin
        .get("/api/v1/admin/executions/?status=completed&skip=1")
        .await;
    assert_eq!(
        (r.body["total"].clone(), r.body["has_more"].clone()),
        (json!(2), json!(false))
    );
    let r = admin
        .get(&format!(
            "/api/v1/admin/executions/?user_id={}",
            user_id(&other).await
        ))
        .await;
    assert_eq!(r.body["total"], 1);

    for query in [
        "limit=0",
        "limit=201",
        "skip=-1",
        "status=done",
        "priority=urgent",
    ] {
        let r = admin
            .get(&format!("/api/v1/admin/executions/?{query}"))
            .await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
    }
    let r = put(
        &admin,
        &format!("/api/v1/admin/executions/{mine}/priority"),
        json!({"priority": "urgent"}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = put(
        &admin,
        &format!("/api/v1/admin/executions/{mine}/priority"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = put(
        &admin,
        "/api/v1/admin/executions/missing/priority",
        json!({"priority": "low"}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // A finished execution keeps its slot-free state; only its stored priority changes.
    let r = put(
        &admin,
        &format!("/api/v1/admin/executions/{mine}/priority"),
        json!({"priority": "background"}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["priority"].clone()),
        (200, json!("background"))
    );

    assert_eq!(user.get("/api/v1/admin/executions/").await.status, 403);
    assert_eq!(user.get("/api/v1/admin/executions/queue").await.status, 403);
    let r = put(
        &user,
        &format!("/api/v1/admin/executions/{mine}/priority"),
        json!({"priority": "high"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/executions/queue", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
