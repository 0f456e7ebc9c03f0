//! Replay sessions over HTTP: stored sessions, controls with 400 for wrong states, the bus target
//! with its provenance marker (no execution runs twice), the admin replay by filter and its SSE
//! status stream, and validation.

use std::time::{Duration, Instant};

use integr8s_core::execution::ExecutionFilter;
use integr8s_core::ports::replay::ReplayFilter;
use integr8s_core::ports::ReplayStore;
use serde_json::{json, Value};

use crate::harness::{Client, Server, DEADLINE};

async fn open_store(s: &Server) -> integr8s_store::SqliteStore {
    integr8s_store::SqliteStore::open(&s.data_dir.join("integr8s.db").to_string_lossy())
        .await
        .expect("open the server's database")
}

async fn create(admin: &Client, body: Value) -> String {
    let r = admin.post("/api/v1/replay/sessions", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "created");
    r.body["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned()
}

async fn wait_status(admin: &Client, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = admin.get(&format!("/api/v1/replay/sessions/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["status"] == status {
            return r.body;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "session {id} never {status}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_state_error(r: &crate::harness::Resp) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["type"], "InvalidStateError", "{}", r.body);
}

#[tokio::test]
async fn sessions_are_stored_controlled_and_replayed_to_the_bus_with_a_marker() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("replayer").await;
    let done = user.run("print('once')").await;
    assert_eq!(done["status"], "completed", "{done}");
    let execution_id = done["execution_id"].as_str().expect("id").to_owned();

    let id = create(
        &admin,
        json!({"replay_type": "execution", "target": "kafka", "speed_multiplier": 100,
               "filter": {"execution_id": execution_id}}),
    )
    .await;
    let got = admin.get(&format!("/api/v1/replay/sessions/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["config"]["target"], "kafka");
    assert_eq!(got.body["config"]["batch_size"], 100);
    assert_eq!(
        got.body["config"]["filter"]["execution_id"],
        execution_id.as_str()
    );
    assert_eq!(got.body["errors"], json!([]));
    assert_state_error(
        &admin
            .post(&format!("/api/v1/replay/sessions/{id}/pause"), json!({}))
            .await,
    );
    assert_state_error(
        &admin
            .post(&format!("/api/v1/replay/sessions/{id}/resume"), json!({}))
            .await,
    );

    let started = admin
        .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["status"], "running");
    let finished = wait_status(&admin, &id, "completed").await;
    let total = finished["total_events"].as_u64().expect("total");
    assert!(total >= 5, "the execution's pipeline events: {finished}");
    assert_eq!(finished["replayed_events"].as_u64(), Some(total));
    assert_eq!(finished["failed_events"], 0);
    assert_state_error(
        &admin
            .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
            .await,
    );
    assert_state_error(
        &admin
            .post(&format!("/api/v1/replay/sessions/{id}/cancel"), json!({}))
            .await,
    );

    // The copies carry the provenance marker, and the pipeline ignored them: the execution
    // exists once and was not run again.
    let store = open_store(&s).await;
    let marker = format!("replay:{id}:");
    let events = store
        .replay_events(&ReplayFilter::default(), None, 0)
        .await
        .expect("events");
    assert!(events.iter().all(|e| !e
        .envelope
        .metadata
        .correlation_id
        .as_deref()
        .unwrap_or("")
        .starts_with("replay:")));
    use integr8s_core::ports::EventStore;
    let all = store.events_after(&[], 0, 0).await.expect("log");
    let copies = all
        .iter()
        .filter(|e| {
            e.envelope
                .metadata
                .correlation_id
                .as_deref()
                .is_some_and(|c| c.starts_with(&marker))
        })
        .count() as u64;
    assert_eq!(copies, total);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = user.result(&execution_id).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["stdout"], done["stdout"]);
    use integr8s_core::ports::ExecutionStore;
    let (_, executions) = store
        .list_executions(&ExecutionFilter {
            limit: 100,
            ..ExecutionFilter::default()
        })
        .await
        .expect("executions");
    assert_eq!(executions, 1, "a replay never submits or runs anything");

    let listed = admin
        .get("/api/v1/replay/sessions?status=completed&limit=10")
        .await;
    assert_eq!(listed.status, 200);
    let first = &listed.body[0];
    assert_eq!(first["session_id"], id.as_str());
    assert_eq!(
        first["config"],
        json!({"replay_type": "execution", "target": "kafka"})
    );
    assert!(first["duration_seconds"].is_number(), "{first}");
    assert_eq!(
        admin
            .get("/api/v1/replay/sessions?status=running")
            .await
            .body,
        json!([])
    );

    // Stored, so a restarted server still knows the session.
    let mut s = s;
    s.restart().await;
    let admin = s.admin().await;
    assert_eq!(
        admin
            .get(&format!("/api/v1/replay/sessions/{id}"))
            .await
            .body["status"],
        "completed"
    );
    let cleaned = admin
        .post("/api/v1/replay/cleanup?older_than_hours=1", json!({}))
        .await;
    assert_eq!(cleaned.status, 200);
    assert_eq!(
        cleaned.body,
        json!({"removed_sessions": 0, "message": "Removed 0 old sessions"})
    );
}

#[tokio::test]
async fn a_slow_replay_pauses_resumes_and_cancels_and_its_stream_ends() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("slowpoke").await;
    let from = chrono::Utc::now();
    user.run("print(1)").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    user.run("print(2)").await;
    // At speed 0.1 the second's gap of over a second becomes over ten.
    let id = create(
        &admin,
        json!({"replay_type": "time_range", "target": "test", "speed_multiplier": 0.1,
               "filter": {"start_time": from, "event_types": ["execution_requested"]}}),
    )
    .await;
    let started = admin
        .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
        .await;
    assert_eq!(started.body["status"], "running", "{}", started.body);
    let paused = admin
        .post(&format!("/api/v1/replay/sessions/{id}/pause"), json!({}))
        .await;
    assert_eq!(
        (paused.status, paused.body["status"].clone()),
        (200, json!("paused")),
        "{}",
        paused.body
    );
    assert_state_error(
        &admin
            .post(&format!("/api/v1/replay/sessions/{id}/pause"), json!({}))
            .await,
    );
    let resumed = admin
        .post(&format!("/api/v1/replay/sessions/{id}/resume"), json!({}))
        .await;
    assert_eq!(resumed.body["status"], "running");

    let stream = {
        let admin = s.admin().await;
        let id = id.clone();
        tokio::spawn(async move {
            admin
                .sse(&format!("/api/v1/admin/events/replay/{id}/status"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled = admin
        .post(&format!("/api/v1/replay/sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    let frames = stream.await.expect("stream task");
    assert_eq!(frames[0]["session_id"], id.as_str());
    assert_eq!(
        frames.last().expect("frames")["status"],
        "cancelled",
        "{frames:?}"
    );
    for f in &frames {
        for key in [
            "total_events",
            "replayed_events",
            "replay_id",
            "progress_percentage",
            "errors",
            "execution_results",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
    }
    let session = wait_status(&admin, &id, "cancelled").await;
    assert_eq!(session["total_events"], 2);
    assert!(session["replayed_events"].as_u64() < Some(2), "{session}");
}

#[tokio::test]
async fn admin_replay_by_filter_previews_and_schedules() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("filtered").await;
    let id = user.run("print('x')").await["execution_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let dry = admin
        .post("/api/v1/admin/events/replay", json!({"aggregate_id": id}))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["status"], "preview");
    assert_eq!(dry.body["session_id"], Value::Null);
    assert!(dry.body["replay_id"]
        .as_str()
        .is_some_and(|r| r.starts_with("replay-")));
    let preview = dry.body["events_preview"].as_array().expect("preview");
    assert_eq!(
        preview.len() as u64,
        dry.body["total_events"].as_u64().expect("total")
    );
    assert_eq!(preview[0]["event_type"], "execution_requested");
    assert_eq!(preview[0]["aggregate_id"], id.as_str());

    let none = admin
        .post(
            "/api/v1/admin/events/replay",
            json!({"aggregate_id": "nope"}),
        )
        .await;
    assert_eq!(none.status, 404, "{}", none.body);
    assert!(none.body["detail"].is_string());
    let empty = admin
        .post("/api/v1/admin/events/replay", json!({"dry_run": false}))
        .await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert!(
        empty.body["detail"].is_string(),
        "the ErrorResponse shape: {}",
        empty.body
    );

    let unknown_target = admin
        .post(
            "/api/v1/admin/events/replay",
            json!({"aggregate_id": id, "dry_run": false, "target_service": "nowhere"}),
        )
        .await;
    assert_eq!(unknown_target.status, 422, "{}", unknown_target.body);
    assert_eq!(
        unknown_target.body["detail"][0]["loc"],
        json!(["body", "target_service"])
    );

    // Without a target_service the events go to the bus, marked as replays, and the answer is
    // the session's real status.
    let real = admin
        .post(
            "/api/v1/admin/events/replay",
            json!({"aggregate_id": id, "dry_run": false}),
        )
        .await;
    assert_eq!(real.status, 200, "{}", real.body);
    let status = real.body["status"].as_str().unwrap_or_default();
    assert!(matches!(status, "running" | "completed"), "{}", real.body);
    let session_id = real.body["session_id"]
        .as_str()
        .expect("session")
        .to_owned();
    let frames = admin
        .sse(&format!("/api/v1/admin/events/replay/{session_id}/status"))
        .await;
    let last = frames.last().expect("a frame");
    assert_eq!(last["status"], "completed", "{frames:?}");
    assert_eq!(last["replay_id"], real.body["replay_id"]);
    assert_eq!(last["progress_percentage"], 100.0);
    assert_eq!(last["replayed_events"], real.body["total_events"]);
    let session = admin
        .get(&format!("/api/v1/replay/sessions/{session_id}"))
        .await;
    assert_eq!(session.body["config"]["replay_type"], "query");
    assert_eq!(session.body["config"]["target"], "kafka");
    let browse = admin
        .post(
            "/api/v1/admin/events/browse",
            json!({"filters": {"aggregate_id": id}}),
        )
        .await;
    let published = browse.body["total"].as_u64().unwrap_or_default();
    let selected = real.body["total_events"].as_u64().unwrap_or(u64::MAX / 4);
    assert!(
        published >= 2 * selected,
        "every event of the selection was published again: {}",
        browse.body
    );

    let missing = admin.get("/api/v1/admin/events/replay/nope/status").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        user.get(&format!("/api/v1/admin/events/replay/{session_id}/status"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn replay_routes_are_admin_only_and_validate_their_input() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("curious").await;
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(format!("{}/api/v1/replay/sessions", s.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    assert_eq!(user.get("/api/v1/replay/sessions").await.status, 403);
    let denied = user
        .post("/api/v1/replay/sessions", json!({"replay_type": "query"}))
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        user.post("/api/v1/replay/cleanup", json!({})).await.status,
        403
    );
    assert_eq!(
        user.post("/api/v1/admin/events/replay", json!({"aggregate_id": "x"}))
            .await
            .status,
        403
    );

    for bad in [
        json!({}),
        json!({"replay_type": "sideways"}),
        json!({"replay_type": "query", "speed_multiplier": 0}),
        json!({"replay_type": "query", "speed_multiplier": 101}),
        json!({"replay_type": "query", "batch_size": 0}),
        json!({"replay_type": "query", "batch_size": 1001}),
        json!({"replay_type": "query", "max_events": 0}),
        json!({"replay_type": "query", "retry_attempts": 11}),
        json!({"replay_type": "query", "target": "callback"}),
        json!({"replay_type": "query", "target": "file", "target_file_path": "../../etc/x"}),
        json!({"replay_type": "query", "target": "file", "target_file_path": "/etc/x"}),
        json!({"replay_type": "query", "filter": {"event_types": ["nonsense"]}}),
    ] {
        let r = admin.post("/api/v1/replay/sessions", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert!(r.body["detail"].is_array(), "{}", r.body);
    }
    for query in ["status=bogus", "limit=0", "limit=1001", "limit=x"] {
        let r = admin.get(&format!("/api/v1/replay/sessions?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
    }
    assert_eq!(
        admin
            .post("/api/v1/replay/cleanup?older_than_hours=0", json!({}))
            .await
            .status,
        422
    );

    for path in ["", "/start", "/pause", "/resume", "/cancel"] {
        let r = if path.is_empty() {
            admin.get("/api/v1/replay/sessions/nope").await
        } else {
            admin
                .post(&format!("/api/v1/replay/sessions/nope{path}"), json!({}))
                .await
        };
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.body["detail"].is_string());
    }

    // A session with nothing to replay completes at once; a file target writes inside the
    // server's replay directory.
    let id = create(
        &admin,
        json!({"replay_type": "query", "filter": {"aggregate_id": "nothing"}}),
    )
    .await;
    let started = admin
        .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
        .await;
    assert_eq!(
        started.body,
        json!({"session_id": id, "status": "completed", "message": "No events to replay"})
    );
    let id = create(
        &admin,
        json!({"replay_type": "event_type", "target": "file", "target_file_path": "dump/users.jsonl",
               "speed_multiplier": 100, "filter": {"event_types": ["user_registered"]}}),
    )
    .await;
    admin
        .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
        .await;
    let done = wait_status(&admin, &id, "completed").await;
    let text =
        std::fs::read_to_string(s.data_dir.join("replays/dump/users.jsonl")).expect("replay file");
    assert_eq!(
        text.lines().count() as u64,
        done["replayed_events"].as_u64().expect("count")
    );
    assert!(text.contains("\"curious\""), "{text}");
}

#[tokio::test]
async fn target_topics_select_the_event_types_replayed() {
    let s = Server::start(&[]).await;
    let admin = s.admin().await;
    let user = s.new_user("topical").await;
    let done = user.run("print('t')").await;
    let execution_id = done["execution_id"].as_str().expect("id").to_owned();

    let bad = admin
        .post(
            "/api/v1/replay/sessions",
            json!({"replay_type": "execution", "target": "kafka",
                   "filter": {"execution_id": execution_id},
                   "target_topics": {"no_such_event": "t"}}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    let id = create(
        &admin,
        json!({"replay_type": "execution", "target": "kafka", "speed_multiplier": 100,
               "filter": {"execution_id": execution_id},
               "target_topics": {"execution_requested": "execution_events"}}),
    )
    .await;
    let started = admin
        .post(&format!("/api/v1/replay/sessions/{id}/start"), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let finished = wait_status(&admin, &id, "completed").await;
    let total = finished["total_events"].as_u64().expect("total");
    assert!(total >= 5, "{finished}");
    assert_eq!(
        finished["replayed_events"], 1,
        "only the named type: {finished}"
    );
    assert_eq!(
        finished["skipped_events"].as_u64(),
        Some(total - 1),
        "{finished}"
    );
}
