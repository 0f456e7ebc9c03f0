//! The execution event stream: wire format, early close for finished executions, live relay
//! until the pipeline ends, and the checks made before streaming.

use axum::http::{header, Method, StatusCode};
use http_body_util::BodyExt;
use integr8s_core::event::EventPayload;
use integr8s_core::ExecutionStatus;
use serde_json::Value;
use tokio::time::{timeout, Duration};
use tower::ServiceExt;

use crate::common::*;
use crate::executions::finish;

fn frames(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "{body:?}");
    body.split("\r\n\r\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            // A stored event's frame starts with its `id:` (its seq), the status frame has none.
            let f = match f.split_once("\r\n") {
                Some((id, rest)) if id.starts_with("id: ") => {
                    assert!(id["id: ".len()..].parse::<i64>().is_ok(), "{f:?}");
                    rest
                }
                _ => f,
            };
            let data = f
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data frame: {f:?}"));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn finished_execution_sends_status_then_result_and_closes() {
    let app = TestApp::new().await;
    let session = app.user("alice").await;
    let id = app.execute(&session, "print('hello')").await;
    finish(&app, &id, ExecutionStatus::Completed).await;

    let response = app
        .get(&format!("/api/v1/events/executions/{id}"), Some(&session))
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(response.headers["x-accel-buffering"], "no");
    let frames = frames(&response.text());
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["event_type"], "status");
    assert_eq!(frames[0]["status"], "completed");
    assert!(frames[0]["event_id"].is_null() && frames[0]["result"].is_null());
    assert_eq!(frames[0]["execution_id"], id.as_str());
    assert_eq!(frames[1]["event_type"], "result_stored");
    let result = &frames[1]["result"];
    assert_eq!(result["stdout"], "hello\n");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["lang"], "python");
    assert!(result["metadata"].is_null());
    assert!(result["created_at"].is_string());
}

#[tokio::test]
async fn live_stream_relays_events_until_the_result_is_stored() {
    let app = TestApp::new().await;
    let session = app.user("bob").await;
    let id = app.execute(&session, "print('hello')").await;

    // The handler subscribes and reads the status before it returns the response head.
    let req = request(
        Method::GET,
        &format!("/api/v1/events/executions/{id}"),
        Some(&session),
        None,
    );
    let response = app.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    finish(&app, &id, ExecutionStatus::Completed).await;
    let outcome = EventPayload::ExecutionCompleted {
        execution_id: id.clone(),
        exit_code: 0,
        output: Default::default(),
    };
    app.state.outbox.emit(outcome, None, None).await.unwrap();
    let stored = EventPayload::ResultStored {
        execution_id: id.clone(),
        storage_type: Some("database".into()),
        storage_path: id.clone(),
        size_bytes: 6,
    };
    app.state.outbox.emit(stored, None, None).await.unwrap();

    let body = timeout(Duration::from_secs(60), response.into_body().collect())
        .await
        .expect("stream did not close after result_stored")
        .unwrap()
        .to_bytes();
    let frames = frames(&String::from_utf8_lossy(&body));
    let types: Vec<&str> = frames
        .iter()
        .map(|f| f["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "status",
            "execution_requested",
            "execution_completed",
            "result_stored"
        ]
    );
    assert_eq!(frames[0]["status"], "queued");
    assert!(
        frames[1]["event_id"].is_string()
            && frames[1]["status"].is_null()
            && frames[1]["result"].is_null()
    );
    assert_eq!(frames[3]["result"]["stdout"], "hello\n");
}

#[tokio::test]
async fn stream_checks_access_before_streaming() {
    let app = TestApp::new().await;
    let owner = app.user("carol").await;
    let other = app.user("dave").await;
    let id = app.execute(&owner, "print(1)").await;
    let forbidden = app
        .get(&format!("/api/v1/events/executions/{id}"), Some(&other))
        .await;
    assert_domain_error(
        &forbidden,
        StatusCode::FORBIDDEN,
        "Access denied",
        "ForbiddenError",
    );
    let missing = app
        .get("/api/v1/events/executions/unknown", Some(&owner))
        .await;
    assert_domain_error(
        &missing,
        StatusCode::NOT_FOUND,
        "Execution unknown not found",
        "ExecutionNotFoundError",
    );
    let anonymous = app
        .get(&format!("/api/v1/events/executions/{id}"), None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
