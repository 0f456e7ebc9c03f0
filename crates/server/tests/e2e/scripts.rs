//! Saved scripts over HTTP: CRUD for the owner, 404 for everyone else, validation.

use integr8s_core::ports::EventStore;
use integr8s_core::EventType;
use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};

async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(
        c.http
            .put(format!("{}{path}", c.base))
            .header("X-CSRF-Token", &c.csrf)
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn owner_creates_reads_updates_and_deletes_a_script() {
    let s = Server::start(&[]).await;
    let u = s.new_user("scripter").await;

    let created = u
        .post(
            "/api/v1/scripts",
            json!({"name": "hello", "script": "print('hi')", "description": "first", "unknown": 1}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["script_id"]
        .as_str()
        .expect("script_id")
        .to_owned();
    assert_eq!(created.body["lang"], "python");
    assert_eq!(created.body["lang_version"], "3.11");
    assert_eq!(created.body["description"], "first");
    for key in ["name", "script", "created_at", "updated_at"] {
        assert!(
            created.body.get(key).is_some(),
            "missing {key}: {}",
            created.body
        );
    }

    let got = u.get(&format!("/api/v1/scripts/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);

    let other = u
        .post(
            "/api/v1/scripts",
            json!({"name": "second", "script": "print(2)"}),
        )
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body["description"], Value::Null);

    let updated = put(
        &u,
        &format!("/api/v1/scripts/{id}"),
        json!({"name": "renamed", "lang_version": "3.12"}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "renamed");
    assert_eq!(
        updated.body["script"], "print('hi')",
        "absent fields are kept"
    );
    assert_eq!(updated.body["lang_version"], "3.12");
    assert_eq!(updated.body["created_at"], created.body["created_at"]);
    assert_ne!(updated.body["updated_at"], created.body["updated_at"]);

    let list = u.get("/api/v1/scripts").await;
    assert_eq!(list.status, 200);
    let names: Vec<_> = list.body["scripts"]
        .as_array()
        .expect("scripts")
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("renamed"), json!("second")], "{}", list.body);

    let deleted = u.delete(&format!("/api/v1/scripts/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        deleted.body,
        Value::String(String::new()),
        "204 has no body"
    );
    assert_eq!(u.get(&format!("/api/v1/scripts/{id}")).await.status, 404);
    assert_eq!(u.delete(&format!("/api/v1/scripts/{id}")).await.status, 404);
    assert_eq!(
        u.get("/api/v1/scripts").await.body["scripts"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Saves and deletes are recorded in the event store.
    let store = crate::user_settings::open_store(&s).await;
    let types = [EventType::ScriptSaved, EventType::ScriptDeleted];
    let events = store.events_after(&types, 0, 0).await.expect("events");
    let kinds: Vec<_> = events.iter().map(|e| e.envelope.event_type()).collect();
    assert_eq!(
        kinds,
        [
            EventType::ScriptSaved,
            EventType::ScriptSaved,
            EventType::ScriptSaved,
            EventType::ScriptDeleted
        ]
    );
    assert_eq!(
        events[3].envelope.aggregate_id.as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn another_users_script_is_not_found() {
    let s = Server::start(&[]).await;
    let alice = s.new_user("alice").await;
    let bob = s.new_user("bob").await;
    let r = alice
        .post(
            "/api/v1/scripts",
            json!({"name": "secret", "script": "print(1)"}),
        )
        .await;
    let id = r.body["script_id"].as_str().expect("script_id").to_owned();
    let path = format!("/api/v1/scripts/{id}");

    let got = bob.get(&path).await;
    assert_eq!(got.status, 404);
    assert!(got.body["detail"].is_string(), "{}", got.body);
    assert_eq!(
        put(&bob, &path, json!({"name": "mine now"})).await.status,
        404
    );
    assert_eq!(bob.delete(&path).await.status, 404);
    assert_eq!(
        bob.get("/api/v1/scripts").await.body,
        json!({"scripts": [], "total": 0})
    );
    assert_eq!(alice.get(&path).await.body["name"], "secret", "untouched");
    assert_eq!(alice.get("/api/v1/scripts/not-a-script").await.status, 404);
}

#[tokio::test]
async fn scripts_need_a_session_and_valid_input() {
    let s = Server::start(&[]).await;
    let anon = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/api/v1/scripts"),
        ("GET", "/api/v1/scripts/x"),
        ("DELETE", "/api/v1/scripts/x"),
    ] {
        let r = anon
            .request(method.parse().expect("method"), format!("{}{path}", s.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    let u = s.user().await;
    let too_long = "x".repeat(50_001);
    for body in [
        json!({"name": "", "script": "print(1)"}),
        json!({"name": "   ", "script": "print(1)"}),
        json!({"script": "print(1)"}),
        json!({"name": "n"}),
        json!({"name": 5, "script": "print(1)"}),
        json!({"name": "n", "script": too_long}),
        json!({"name": "n", "script": "s", "lang": ""}),
        json!(["not", "an", "object"]),
    ] {
        let r = u.post("/api/v1/scripts", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert!(r.body["detail"].is_array(), "{}", r.body);
    }
    let ok = u
        .post(
            "/api/v1/scripts",
            json!({"name": "n", "script": "x".repeat(50_000)}),
        )
        .await;
    assert_eq!(ok.status, 200, "exactly the limit is accepted");
    let id = ok.body["script_id"].as_str().expect("script_id").to_owned();
    let r = put(&u, &format!("/api/v1/scripts/{id}"), json!({"name": ""})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = put(
        &u,
        &format!("/api/v1/scripts/{id}"),
        json!({"script": "y".repeat(50_001)}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = put(
        &u,
        &format!("/api/v1/scripts/{id}"),
        json!({"name": null, "updated_at": "whenever"}),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "null keeps the value, updated_at is the server's: {}",
        r.body
    );
    assert_eq!(r.body["name"], "n");
}
