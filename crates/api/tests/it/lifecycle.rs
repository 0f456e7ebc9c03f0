//! Execution lifecycle routes: listing with filters and paging, cancel, retry and admin delete.

use axum::http::{Method, StatusCode};
use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::ExecutionStatus;
use serde_json::json;

use crate::common::*;
use crate::executions::finish;

#[tokio::test]
async fn listing_filters_and_pages() {
    let app = TestApp::new().await;
    let session = app.user("ivy").await;
    let other = app.user("jack").await;
    let ids = [
        app.execute(&session, "print(1)").await,
        app.execute(&session, "print(2)").await,
        app.execute(&session, "print(3)").await,
    ];
    app.execute(&other, "print(4)").await;
    finish(&app, &ids[0], ExecutionStatus::Completed).await;

    let page = app
        .get("/api/v1/user/executions?limit=2", Some(&session))
        .await
        .json();
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["skip"], 0);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["executions"].as_array().unwrap().len(), 2);
    let rest = app
        .get("/api/v1/user/executions?limit=2&skip=2", Some(&session))
        .await
        .json();
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["executions"].as_array().unwrap().len(), 1);

    let completed = app
        .get("/api/v1/user/executions?status=completed", Some(&session))
        .await
        .json();
    assert_eq!(completed["total"], 1);
    assert_eq!(completed["executions"][0]["execution_id"], ids[0].as_str());
    let queued = app
        .get(
            "/api/v1/user/executions?status=queued&lang=python",
            Some(&session),
        )
        .await
        .json();
    assert_eq!(queued["total"], 2);
    let ruby = app
        .get("/api/v1/user/executions?lang=ruby", Some(&session))
        .await
        .json();
    assert_eq!(ruby["total"], 0);
    let future = app
        .get(
            "/api/v1/user/executions?start_time=2999-01-01T00:00:00Z",
            Some(&session),
        )
        .await
        .json();
    assert_eq!(future["total"], 0);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("skip=-1", "skip"),
        ("status=bogus", "status"),
        ("start_time=yesterday", "start_time"),
    ] {
        let response = app
            .get(&format!("/api/v1/user/executions?{query}"), Some(&session))
            .await;
        assert_validation_error(&response, &["query", field]);
    }
}

#[tokio::test]
async fn cancel_emits_the_event_and_respects_terminal_states() {
    let app = TestApp::new().await;
    let session = app.user("kim").await;
    let id = app.execute(&session, "import time; time.sleep(60)").await;
    let body = json!({"reason": "changed my mind"});
    let response = app
        .post_json(
            &format!("/api/v1/executions/{id}/cancel"),
            &body,
            Some(&session),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let answer = response.json();
    assert_eq!(answer["status"], "cancellation_requested");
    assert_eq!(answer["execution_id"], id.as_str());
    let events = app
        .state
        .store
        .events_for_aggregate(&id, &[EventType::ExecutionCancelled], 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(answer["event_id"], events[0].envelope.event_id.as_str());
    match &events[0].envelope.payload {
        EventPayload::ExecutionCancelled {
            cancelled_by,
            force_terminated,
            reason,
            ..
        } => {
            assert_eq!(cancelled_by, &session.user_id);
            assert!(!force_terminated);
            assert_eq!(reason.as_deref(), Some("changed my mind"));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    // An empty body uses the default reason.
    let req = request(
        Method::POST,
        &format!("/api/v1/executions/{id}/cancel"),
        Some(&session),
        None,
    );
    assert_eq!(app.send(req).await.status, StatusCode::OK);

    let done = app.execute(&session, "print(1)").await;
    finish(&app, &done, ExecutionStatus::Completed).await;
    let response = app
        .post_json(
            &format!("/api/v1/executions/{done}/cancel"),
            &json!({}),
            Some(&session),
        )
        .await;
    assert_domain_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Cannot cancel execution in completed state",
        "InvalidStateError",
    );

    let cancelled = app.execute(&session, "print(1)").await;
    finish(&app, &cancelled, ExecutionStatus::Cancelled).await;
    let response = app
        .post_json(
            &format!("/api/v1/executions/{cancelled}/cancel"),
            &json!({}),
            Some(&session),
        )
        .await;
    assert_eq!(response.json()["status"], "already_cancelled");
    assert!(response.json()["event_id"].is_null());

    let other = app.user("leo").await;
    let response = app
        .post_json(
            &format!("/api/v1/executions/{id}/cancel"),
            &json!({}),
            Some(&other),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn retry_creates_a_new_execution_once_finished() {
    let app = TestApp::new().await;
    let session = app.user("mia").await;
    let id = app.execute(&session, "print('again')").await;
    let path = format!("/api/v1/executions/{id}/retry");
    let busy = app
        .send(request(Method::POST, &path, Some(&session), None))
        .await;
    assert_domain_error(
        &busy,
        StatusCode::BAD_REQUEST,
        "Cannot retry execution in queued state",
        "InvalidStateError",
    );
    finish(&app, &id, ExecutionStatus::Failed).await;
    let retried = app
        .send(request(Method::POST, &path, Some(&session), None))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text());
    let new_id = retried.json()["execution_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    let copy = app.state.store.execution(&new_id).await.unwrap().unwrap();
    assert_eq!(copy.script, "print('again')");
    assert_eq!(copy.user_id, session.user_id);
}

#[tokio::test]
async fn only_admins_delete() {
    let app = TestApp::new().await;
    let session = app.user("ned").await;
    let admin = app.admin("boss").await;
    let id = app.execute(&session, "print(1)").await;
    let path = format!("/api/v1/executions/{id}");
    assert_domain_error(
        &app.delete(&path, Some(&session)).await,
        StatusCode::FORBIDDEN,
        "Admin access required for user 'ned'",
        "AdminAccessRequiredError",
    );
    let deleted = app.delete(&path, Some(&admin)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert_eq!(
        deleted.json(),
        json!({"message": "Execution deleted successfully", "execution_id": id})
    );
    let cancelled = app
        .state
        .store
        .events_for_aggregate(&id, &[EventType::ExecutionCancelled], 10)
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1, "an active execution is cancelled first");
    assert_eq!(
        app.get(&format!("{path}/result"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, Some(&admin)).await.status,
        StatusCode::NOT_FOUND
    );
}
