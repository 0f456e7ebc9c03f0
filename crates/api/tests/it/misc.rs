//! Public endpoints, health and the cross-cutting headers.

use axum::http::{header, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn example_scripts_and_limits_are_cacheable() {
    let app = TestApp::new().await;
    let examples = app.get("/api/v1/example-scripts", None).await;
    assert_eq!(examples.status, StatusCode::OK);
    assert_eq!(
        examples.headers[header::CACHE_CONTROL],
        "public, max-age=600"
    );
    let scripts = examples.json()["scripts"].clone();
    for lang in ["python", "node", "ruby", "bash", "go"] {
        assert!(!scripts[lang].as_str().unwrap().is_empty(), "{lang}");
    }

    let limits = app.get("/api/v1/k8s-limits", None).await;
    assert_eq!(limits.headers[header::CACHE_CONTROL], "public, max-age=300");
    let body = limits.json();
    assert_eq!(body["memory_limit"], "256Mi");
    assert_eq!(body["cpu_limit"], "1000m");
    assert_eq!(body["execution_timeout"], 10);
    assert_eq!(body["supported_runtimes"]["python"]["file_ext"], "py");
    assert!(body["supported_runtimes"]["python"]["versions"]
        .as_array()
        .unwrap()
        .contains(&json!("3.11")));
}

#[tokio::test]
async fn limits_list_only_installed_runtimes() {
    let app = TestApp::with(Options {
        all_runtimes_available: false,
        ..Options::default()
    })
    .await;
    let body = app.get("/api/v1/k8s-limits", None).await.json();
    assert_eq!(body["supported_runtimes"], json!({}));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    for response in [
        app.get("/api/v1/health/live", None).await,
        app.get("/api/v1/auth/me", None).await,
        app.get("/api/v1/nowhere", None).await,
    ] {
        assert_eq!(response.headers["x-content-type-options"], "nosniff");
        assert_eq!(response.headers["x-frame-options"], "DENY");
        assert_eq!(
            response.headers["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
        assert_eq!(
            response.headers["strict-transport-security"],
            "max-age=63072000; includeSubDomains"
        );
        assert_eq!(
            response.headers["content-security-policy"],
            "default-src 'self'; frame-ancestors 'none'"
        );
    }
    let missing = app.get("/api/v1/nowhere", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json(), json!({"detail": "Not Found"}));
    let wrong_method = app.delete("/api/v1/health/live", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json(), json!({"detail": "Method Not Allowed"}));
}

#[tokio::test]
async fn health_live_and_ready() {
    let app = TestApp::new().await;
    let live = app.get("/api/v1/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    let body = live.json();
    assert_eq!(body["status"], "ok");
    assert!(body["uptime_seconds"].is_u64());
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());

    let ready = app.get("/api/v1/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ok");
    assert_eq!(ready.json()["checks"]["store"]["ready"], true);

    let degraded = TestApp::with(Options {
        sandbox_ready: false,
        ..Options::default()
    })
    .await;
    let ready = degraded.get("/api/v1/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["sandbox"]["ready"], false);
    assert_eq!(body["checks"]["sandbox"]["mode"], "unavailable");
}

#[tokio::test]
async fn malformed_paths_and_queries_are_422_not_500() {
    let app = TestApp::new().await;
    let session = app.user("quinn").await;
    let bad_path = app
        .get("/api/v1/executions/%FF%FE/result", Some(&session))
        .await;
    assert_validation_error(&bad_path, &["path"]);
    let bad_query = app
        .get("/api/v1/user/executions?limit=%FF", Some(&session))
        .await;
    assert_eq!(
        bad_query.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_query.text()
    );
}
