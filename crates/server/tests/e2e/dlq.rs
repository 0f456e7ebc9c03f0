//! The DLQ admin API: list, inspect, retry (a real redelivery to the consumer group), discard,
//! stats; admin only, contract error shapes.

use std::time::{Duration, Instant};

use integr8s_core::event::EventType;
use integr8s_core::ports::dlq::NewDlqMessage;
use integr8s_core::ports::{DlqStore, EventStore};
use serde_json::{json, Value};

use crate::harness::{Client, Server, DEADLINE};

async fn open_store(s: &Server) -> integr8s_store::SqliteStore {
    integr8s_store::SqliteStore::open(&s.data_dir.join("integr8s.db").to_string_lossy())
        .await
        .expect("open the server's database")
}

/// Dead-letters the `execution_requested` event of `execution_id` for `group`, as a consumer
/// whose handler kept failing would.
async fn dead_letter(s: &Server, execution_id: &str, group: &str) -> String {
    let store = open_store(s).await;
    let event = store
        .events_for_aggregate(execution_id, &[EventType::ExecutionRequested], 1)
        .await
        .expect("events")
        .into_iter()
        .next()
        .expect("the request event");
    let m = store
        .dead_letter(&NewDlqMessage {
            group: group.to_owned(),
            event,
            error: "handler failed: database is locked".to_owned(),
            attempts: 5,
            producer_id: group.to_owned(),
            failed_at: chrono::Utc::now(),
        })
        .await
        .expect("dead letter");
    m.message_id
}

async fn wait_message(admin: &Client, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = admin.get(&format!("/api/v1/dlq/messages/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if ok(&r.body) {
            return r.body;
        }
        assert!(start.elapsed() < DEADLINE, "dlq message {id}: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admins_inspect_retry_and_discard_dead_letters() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("poisoned").await;
    let empty = admin.get("/api/v1/dlq/messages").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(
        empty.body,
        json!({"messages": [], "total": 0, "limit": 50, "offset": 0})
    );

    let first = user.run("print(1)").await["execution_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = user.run("print(2)").await["execution_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a = dead_letter(&s, &first, "coordinator").await;
    let b = dead_letter(&s, &second, "result-processor").await;

    let listed = admin
        .get("/api/v1/dlq/messages?status=pending&group=coordinator")
        .await;
    assert_eq!(listed.body["total"], 1, "{}", listed.body);
    let m = &listed.body["messages"][0];
    assert_eq!(m["message_id"], a.as_str());
    assert_eq!(m["event_type"], "execution_requested");
    assert_eq!(m["original_topic"], "execution_requested");
    assert_eq!(m["attempts"], 5);
    assert_eq!(m["retry_count"], 0);
    assert_eq!(m["error"], "handler failed: database is locked");
    assert_eq!(m["event"]["execution_id"], first.as_str());
    let page = admin.get("/api/v1/dlq/messages?limit=1&offset=1").await;
    assert_eq!(
        (
            page.body["total"].clone(),
            page.body["messages"].as_array().map(Vec::len)
        ),
        (json!(2), Some(1))
    );
    let by_type = admin
        .get("/api/v1/dlq/messages?event_type=result_stored")
        .await;
    assert_eq!(by_type.body["total"], 0);

    // A retry redelivers the event to the coordinator only; its handler is idempotent, so the
    // finished execution is untouched and the redelivery completes.
    let retried = admin
        .post(&format!("/api/v1/dlq/messages/{a}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["status"], "retried");
    assert_eq!(retried.body["retry_count"], 1);
    let done = wait_message(&admin, &a, |m| !m["redelivered_at"].is_null()).await;
    assert_eq!(done["status"], "retried");
    assert_eq!(user.result(&first).await["status"], "completed");
    let again = admin
        .post(&format!("/api/v1/dlq/messages/{a}/retry"), json!({}))
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.body["type"], "InvalidStateError");

    let discarded = admin
        .post(
            &format!("/api/v1/dlq/messages/{b}/discard"),
            json!({"reason": "obsolete"}),
        )
        .await;
    assert_eq!(discarded.status, 200, "{}", discarded.body);
    assert_eq!(discarded.body["status"], "discarded");
    let got = admin.get(&format!("/api/v1/dlq/messages/{b}")).await;
    assert_eq!(got.body["discard_reason"], "obsolete");
    assert_eq!(
        admin
            .post(&format!("/api/v1/dlq/messages/{b}/discard"), json!({}))
            .await
            .status,
        400
    );
    assert_eq!(
        admin
            .post(&format!("/api/v1/dlq/messages/{b}/retry"), json!({}))
            .await
            .status,
        400
    );

    let store = open_store(&s).await;
    for t in [EventType::DlqMessageRetried, EventType::DlqMessageDiscarded] {
        let events = store.events_after(&[t], 0, 0).await.expect("events");
        assert_eq!(events.len(), 1, "{t}");
    }

    let stats = admin.get("/api/v1/dlq/stats").await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.body["total"], 2);
    assert_eq!(
        stats.body["by_status"],
        json!({"pending": 0, "scheduled": 0, "retried": 1, "discarded": 1})
    );
    assert_eq!(
        stats.body["by_event_type"],
        json!([{"event_type": "execution_requested", "count": 2}])
    );
}

#[tokio::test]
async fn dlq_routes_are_admin_only_and_validate_their_input() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.user().await;
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(format!("{}/api/v1/dlq/stats", s.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    for path in [
        "/api/v1/dlq/messages",
        "/api/v1/dlq/stats",
        "/api/v1/dlq/messages/x",
    ] {
        assert_eq!(user.get(path).await.status, 403, "{path}");
    }
    assert_eq!(
        user.post("/api/v1/dlq/messages/x/retry", json!({}))
            .await
            .status,
        403
    );
    for query in [
        "status=lost",
        "event_type=nope",
        "limit=0",
        "limit=1001",
        "offset=-1",
        "limit=abc",
    ] {
        let r = admin.get(&format!("/api/v1/dlq/messages?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert!(r.body["detail"].is_array());
    }
    for r in [
        admin.get("/api/v1/dlq/messages/nope").await,
        admin
            .post("/api/v1/dlq/messages/nope/retry", json!({}))
            .await,
        admin
            .post("/api/v1/dlq/messages/nope/discard", json!({}))
            .await,
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["type"], "DLQMessageNotFoundError");
    }
    let bad = admin
        .send(
            admin
                .http
                .post(format!("{}/api/v1/dlq/messages/nope/discard", admin.base))
                .header("X-CSRF-Token", &admin.csrf)
                .header("content-type", "application/json")
                .body("[1]"),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}
