//! Execution routes: submission, idempotency, validation, access control, listing, cancel,
//! retry and admin delete. No workers run, so executions stay queued unless a test finishes them.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use integr8s_core::event::EventType;
use integr8s_core::execution::ExecutionResultRecord;
use integr8s_core::{ExecutionStatus, ResourceUsage};
use serde_json::json;

use crate::common::*;

pub async fn finish(app: &TestApp, execution_id: &str, status: ExecutionStatus) {
    let record = ExecutionResultRecord {
        status,
        stdout: "hello\n".into(),
        stderr: String::new(),
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        resource_usage: Some(ResourceUsage {
            execution_time_wall_seconds: 0.5,
            cpu_time_jiffies: 3,
            clk_tck_hertz: 100,
            peak_memory_kb: 2048,
        }),
    };
    assert!(app
        .state
        .store
        .finish_execution(execution_id, &record)
        .await
        .unwrap());
}

#[tokio::test]
async fn submission_is_queued_with_its_request_event() {
    let app = TestApp::new().await;
    let session = app.user("alice").await;
    let response = app
        .post_json(
            "/api/v1/execute",
            &json!({"script": "print('hi')"}),
            Some(&session),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let id = response.json()["execution_id"].as_str().unwrap().to_owned();
    assert_eq!(response.json()["status"], "queued");

    let result = app
        .get(&format!("/api/v1/executions/{id}/result"), Some(&session))
        .await;
    assert_eq!(result.status, StatusCode::OK);
    let result = result.json();
    assert_eq!(result["status"], "queued");
    assert_eq!(result["lang"], "python");
    assert_eq!(result["lang_version"], "3.11");
    assert_eq!(result["priority"], "normal");
    for key in [
        "stdout",
        "stderr",
        "resource_usage",
        "exit_code",
        "error_type",
    ] {
        assert!(result[key].is_null(), "{key}");
    }

    let events = app
        .get(&format!("/api/v1/executions/{id}/events"), Some(&session))
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let events = events.json();
    assert_eq!(events.as_array().unwrap().len(), 1);
    let requested = &events[0];
    assert_eq!(requested["event_type"], "execution_requested");
    assert_eq!(requested["execution_id"], id.as_str());
    assert_eq!(
        requested["runtime_command"],
        json!(["/usr/bin/python3.11", "-I", "/work/main.py"])
    );
    assert_eq!(requested["memory_limit"], "256Mi");
    assert_eq!(requested["metadata"]["user_id"], session.user_id.as_str());

    let filtered = app
        .get(&format!("/api/v1/executions/{id}/events?event_types=result_stored&event_types=execution_cancelled"), Some(&session))
        .await;
    assert_eq!(filtered.json(), json!([]));
    let bad = app
        .get(
            &format!("/api/v1/executions/{id}/events?event_types=nope"),
            Some(&session),
        )
        .await;
    assert_validation_error(&bad, &["query", "event_types"]);
    let bad = app
        .get(
            &format!("/api/v1/executions/{id}/events?limit=1001"),
            Some(&session),
        )
        .await;
    assert_validation_error(&bad, &["query", "limit"]);
}

#[tokio::test]
async fn idempotency_key_returns_the_same_execution() {
    let app = TestApp::new().await;
    let session = app.user("bob").await;
    let submit = |key: &str| {
        let mut req = request(
            Method::POST,
            "/api/v1/execute",
            Some(&session),
            Some(&json!({"script": "print(1)"})),
        );
        req.headers_mut()
            .insert("Idempotency-Key", key.parse().unwrap());
        req
    };
    let first = app.send(submit("key-1")).await.json();
    let second = app.send(submit("key-1")).await.json();
    assert_eq!(first["execution_id"], second["execution_id"]);
    assert_eq!(second["status"], "queued");
    let list = app
        .get("/api/v1/user/executions", Some(&session))
        .await
        .json();
    assert_eq!(list["total"], 1);
    let requested = app
        .state
        .store
        .events_after(&[EventType::ExecutionRequested], 0, 100)
        .await
        .unwrap();
    assert_eq!(requested.len(), 1);

    let too_long = app.send(submit(&"k".repeat(256))).await;
    assert_validation_error(&too_long, &["header", "Idempotency-Key"]);
}

#[tokio::test]
async fn invalid_submissions_are_422_and_store_nothing() {
    let app = TestApp::new().await;
    let session = app.user("carol").await;
    let long = app
        .post_json(
            "/api/v1/execute",
            &json!({"script": "x".repeat(50_001)}),
            Some(&session),
        )
        .await;
    assert_eq!(
        assert_validation_error(&long, &["body", "script"])["type"],
        "string_too_long"
    );
    let ok = app
        .post_json(
            "/api/v1/execute",
            &json!({"script": "#".repeat(50_000)}),
            Some(&session),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    let lang = app
        .post_json(
            "/api/v1/execute",
            &json!({"script": "1", "lang": "cobol"}),
            Some(&session),
        )
        .await;
    let issue = assert_validation_error(&lang, &["body", "lang"]);
    assert!(issue["msg"].as_str().unwrap().contains("python"), "{issue}");
    let version = app
        .post_json(
            "/api/v1/execute",
            &json!({"script": "1", "lang": "python", "lang_version": "2.7"}),
            Some(&session),
        )
        .await;
    let issue = assert_validation_error(&version, &["body", "lang_version"]);
    assert!(issue["msg"].as_str().unwrap().contains("3.11"), "{issue}");

    let missing = app
        .post_json(
            "/api/v1/execute",
            &json!({"lang": "python"}),
            Some(&session),
        )
        .await;
    assert_eq!(
        assert_validation_error(&missing, &["body", "script"])["type"],
        "missing"
    );
    let wrong_type = app
        .post_json("/api/v1/execute", &json!({"script": 42}), Some(&session))
        .await;
    assert_validation_error(&wrong_type, &["body", "script"]);

    let raw = |content_type: &str, body: &str| {
        let mut req = request(Method::POST, "/api/v1/execute", Some(&session), None);
        req.headers_mut()
            .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        *req.body_mut() = Body::from(body.to_owned());
        req
    };
    let malformed = app.send(raw("application/json", "{\"script\": ")).await;
    assert_eq!(
        assert_validation_error(&malformed, &["body"])["type"],
        "json_invalid"
    );
    let not_json = app
        .send(raw("text/plain", "{\"script\": \"print(1)\"}"))
        .await;
    assert_validation_error(&not_json, &["body"]);
    let array = app.send(raw("application/json", "[1, 2]")).await;
    assert_validation_error(&array, &["body"]);

    let list = app
        .get("/api/v1/user/executions", Some(&session))
        .await
        .json();
    assert_eq!(list["total"], 1, "only the valid submission was stored");
}

#[tokio::test]
async fn uninstalled_runtime_names_the_package() {
    let app = TestApp::with(Options {
        all_runtimes_available: false,
        ..Options::default()
    })
    .await;
    let session = app.user("dan").await;
    let response = app
        .post_json("/api/v1/execute", &json!({"script": "1"}), Some(&session))
        .await;
    let issue = assert_validation_error(&response, &["body", "lang_version"]);
    assert!(
        issue["msg"]
            .as_str()
            .unwrap()
            .contains("apt-get install python3"),
        "{issue}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::new().await;
    let session = app.user("erin").await;
    let too_large = json!({"detail": "Request too large. Maximum size is 10.0MB"});
    let big = format!("{{\"script\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    // Without a declared length the limit applies while reading.
    let mut req = request(Method::POST, "/api/v1/execute", Some(&session), None);
    req.headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    *req.body_mut() = Body::from(big.clone());
    let response = app.send(req).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json(), too_large);
    // With a declared length it is refused up front.
    let mut req = request(Method::POST, "/api/v1/execute", Some(&session), None);
    req.headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    req.headers_mut().insert(
        header::CONTENT_LENGTH,
        big.len().to_string().parse().unwrap(),
    );
    *req.body_mut() = Body::from(big);
    let response = app.send(req).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json(), too_large);
    assert_eq!(response.headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn full_queue_is_429_with_retry_after() {
    let mut options = Options::default();
    options.config.max_queue_length = 0;
    let app = TestApp::with(options).await;
    let session = app.user("fay").await;
    let response = app
        .post_json("/api/v1/execute", &json!({"script": "1"}), Some(&session))
        .await;
    assert_domain_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Execution queue is full, retry later",
        "QueueFullError",
    );
    assert!(response.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn results_are_visible_to_owner_and_admin_only() {
    let app = TestApp::new().await;
    let owner = app.user("gina").await;
    let other = app.user("hank").await;
    let admin = app.admin("root").await;
    let id = app.execute(&owner, "print(1)").await;
    let path = format!("/api/v1/executions/{id}/result");
    assert_domain_error(
        &app.get(&path, Some(&other)).await,
        StatusCode::FORBIDDEN,
        "Access denied",
        "ForbiddenError",
    );
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
    let events = app
        .get(&format!("/api/v1/executions/{id}/events"), Some(&other))
        .await;
    assert_eq!(events.status, StatusCode::FORBIDDEN);
    assert_domain_error(
        &app.get("/api/v1/executions/no-such-id/result", Some(&owner))
            .await,
        StatusCode::NOT_FOUND,
        "Execution no-such-id not found",
        "ExecutionNotFoundError",
    );
    let anonymous = app.get(&path, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    finish(&app, &id, ExecutionStatus::Completed).await;
    let result = app.get(&path, Some(&owner)).await.json();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["stdout"], "hello\n");
    assert_eq!(result["resource_usage"]["peak_memory_kb"], 2048);
}
