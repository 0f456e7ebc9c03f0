//! Admin event browser against the running binary: filtered browsing and text search, stats,
//! streamed CSV/JSON export, detail with related events, delete with archive, and the errors.

use serde_json::{json, Value};

use crate::admin_users::NO_LIMITS;
use crate::harness::{Client, Server, DEADLINE};

async fn browse(admin: &Client, body: Value) -> Value {
    let r = admin
        .post("/api/v1/admin/events/browse", body.clone())
        .await;
    assert_eq!(r.status, 200, "{body}: {}", r.body);
    r.body
}

/// Waits until the execution's saga has completed: its last event is stored (the execution
/// turns terminal a few events before the pipeline is done with it).
async fn settled(user: &Client, execution: &str) {
    let start = std::time::Instant::now();
    loop {
        let r = user
            .get(&format!("/api/v1/executions/{execution}/events"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let done = r
            .body
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["event_type"] == "saga_completed"));
        if done {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the saga of {execution} did not complete: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn browse_filters_search_detail_and_delete() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let user = server.new_user("Eve_Searchable").await;
    let execution = user.submit("print('hello')").await;
    user.wait_terminal(&execution).await;
    settled(&user, &execution).await;

    let of_execution = browse(&admin, json!({"filters": {"aggregate_id": execution}})).await;
    let total = of_execution["total"].as_u64().unwrap();
    assert!(total >= 5, "the pipeline's events: {of_execution}");
    let events = of_execution["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, total);
    let stamps: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "newest first");
    assert_eq!(events.last().unwrap()["event_type"], "execution_requested");

    let page = browse(
        &admin,
        json!({"filters": {"aggregate_id": execution}, "skip": 1, "limit": 2}),
    )
    .await;
    assert_eq!(page["total"].as_u64(), Some(total));
    assert_eq!(
        (page["skip"].clone(), page["limit"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(page["events"][0]["event_id"], events[1]["event_id"]);

    let typed = browse(&admin, json!({"filters": {"event_types": ["user_registered", "user_logged_in"], "search_text": "eve_SEARCH"}})).await;
    assert_eq!(
        typed["total"], 1,
        "case-insensitive text search over the body: {typed}"
    );
    assert_eq!(typed["events"][0]["event_type"], "user_registered");
    let user_id = typed["events"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_uppercase();
    let logins = browse(
        &admin,
        json!({"filters": {"event_types": ["user_logged_in"], "search_text": user_id}}),
    )
    .await;
    assert_eq!(logins["total"], 1, "the user id is searched too: {logins}");
    let literal = browse(&admin, json!({"filters": {"search_text": "eve%search"}})).await;
    assert_eq!(literal["total"], 0, "`%` is not a wildcard");
    let by_service = browse(
        &admin,
        json!({"filters": {"service_name": "coordinator", "aggregate_id": execution}}),
    )
    .await;
    assert!(by_service["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["metadata"]["service_name"] == "coordinator"));
    assert!(by_service["total"].as_u64().unwrap() >= 2);
    let future = browse(
        &admin,
        json!({"filters": {"start_time": "2999-01-01T00:00:00Z"}}),
    )
    .await;
    assert_eq!(future["total"], 0);

    // Detail: related events of the same aggregate, oldest first, and the timeline.
    let requested = events.last().unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin
        .get(&format!("/api/v1/admin/events/{requested}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["event"]["event_id"], requested.as_str());
    let related = r.body["related_events"].as_array().unwrap();
    assert_eq!(related.len() as u64, (total - 1).min(10));
    assert!(related
        .iter()
        .all(|e| e["aggregate_id"] == execution.as_str() && e["event_id"] != requested.as_str()));
    assert_eq!(
        r.body["timeline"].as_array().unwrap().len(),
        related.len().min(5)
    );
    assert_eq!(r.body["timeline"][0], related[0]);

    // Delete archives and removes.
    let r = admin
        .delete(&format!("/api/v1/admin/events/{requested}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"message": "Event deleted and archived", "event_id": requested})
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/admin/events/{requested}"))
            .await
            .status,
        404
    );
    let r = admin
        .delete(&format!("/api/v1/admin/events/{requested}"))
        .await;
    assert_eq!(
        (r.status, r.body["detail"].clone()),
        (404, json!("Event not found"))
    );
    let after = browse(&admin, json!({"filters": {"aggregate_id": execution}})).await;
    assert_eq!(after["total"].as_u64(), Some(total - 1));
}

#[tokio::test]
async fn stats_and_streamed_exports() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let user = server.user().await;
    let execution = user.submit("print('x')").await;
    user.wait_terminal(&execution).await;
    settled(&user, &execution).await;

    let r = admin.get("/api/v1/admin/events/stats?hours=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let total = r.body["total_events"].as_u64().unwrap();
    assert!(total >= 5);
    let by_type: u64 = r.body["events_by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert!(by_type <= total && by_type > 0);
    let by_hour: u64 = r.body["events_by_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_hour, total);
    assert!(r.body["top_users"][0]["event_count"].as_u64().unwrap() > 0);
    assert!(
        r.body["error_rate"].is_number() && r.body["avg_processing_time"].as_f64().unwrap() > 0.0
    );

    let csv = admin
        .http
        .get(format!(
            "{}/api/v1/admin/events/export/csv?limit=3",
            server.base
        ))
        .header("Cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let disposition = csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=events_export_")
            && disposition.ends_with(".csv"),
        "{disposition}"
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Event ID,Event Type,Timestamp,Aggregate ID,User ID,Service,Status,Error"
    );
    assert_eq!(lines.len(), 4, "header and three rows: {text}");

    let all = admin.get(&format!("/api/v1/admin/events/export/json?aggregate_id={execution}&event_types=execution_requested&event_types=result_stored")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.headers["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".json"));
    assert_eq!(all.body["export_metadata"]["total_events"], 2);
    assert_eq!(all.body["export_metadata"]["export_limit"], 10000);
    assert_eq!(
        all.body["export_metadata"]["filters_applied"]["aggregate_id"],
        execution.as_str()
    );
    let types: Vec<&str> = all.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["result_stored", "execution_requested"]);

    // Longer than one store page: every event once.
    let big = admin
        .get("/api/v1/admin/events/export/json?limit=50000")
        .await;
    let ids: std::collections::HashSet<&str> = big.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len() as u64,
        big.body["export_metadata"]["total_events"]
            .as_u64()
            .unwrap()
    );
}

#[tokio::test]
async fn event_routes_reject_bad_input_and_non_admins() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let user = server.user().await;

    let bad_bodies = [
        json!({}),
        json!({"filters": {}, "limit": 501}),
        json!({"filters": {"event_types": ["no_such_type"]}}),
        json!({"filters": {"start_time": "yesterday"}}),
        json!({"filters": {}, "skip": "x"}),
    ];
    for body in bad_bodies {
        let r = admin
            .post("/api/v1/admin/events/browse", body.clone())
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    for path in [
        "/api/v1/admin/events/stats?hours=0",
        "/api/v1/admin/events/stats?hours=169",
        "/api/v1/admin/events/export/xml",
        "/api/v1/admin/events/export/csv?limit=0",
        "/api/v1/admin/events/export/csv?limit=50001",
        "/api/v1/admin/events/export/json?event_types=bogus",
        "/api/v1/admin/events/export/json?start_time=soon",
    ] {
        let r = admin.get(path).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
    }
    assert_eq!(admin.get("/api/v1/admin/events/missing").await.status, 404);

    assert_eq!(
        user.post("/api/v1/admin/events/browse", json!({"filters": {}}))
            .await
            .status,
        403
    );
    assert_eq!(user.get("/api/v1/admin/events/stats").await.status, 403);
    assert_eq!(
        user.get("/api/v1/admin/events/export/csv").await.status,
        403
    );
    assert_eq!(
        user.delete("/api/v1/admin/events/anything").await.status,
        403
    );
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/events/stats", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
