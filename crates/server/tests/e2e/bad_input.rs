//! Bad input gets the contract's status and JSON shape, never a 500, and stores nothing.

use serde_json::{json, Value};

use crate::harness::Server;

fn is_validation_shape(v: &Value) -> bool {
    v["detail"].is_array() || v["detail"].is_string()
}

#[tokio::test]
async fn malformed_requests_are_rejected_cleanly() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let url = format!("{}/api/v1/execute", s.base);

    let r = u.send(u.http.post(&url).header("X-CSRF-Token", &u.csrf).header("Content-Type", "application/json").body("{not json")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(is_validation_shape(&r.body), "{}", r.body);

    let r = u.send(u.http.post(&url).header("X-CSRF-Token", &u.csrf).header("Content-Type", "text/plain").body("print(1)")).await;
    assert!(r.status == 422 || r.status == 415, "{} {}", r.status, r.body);
    assert!(is_validation_shape(&r.body), "{}", r.body);

    let huge = "x".repeat(11 * 1024 * 1024);
    let r = u.send(u.http.post(&url).header("X-CSRF-Token", &u.csrf).header("Content-Type", "application/json").body(huge)).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["detail"], "Request too large. Maximum size is 10.0MB");

    let r = u.post("/api/v1/execute", json!({"script": "x".repeat(50_001)})).await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = u.post("/api/v1/execute", json!({"script": "print(1)", "lang": "cobol"})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("cobol"), "{}", r.body);

    let r = u.post("/api/v1/execute", json!({"script": "print(1)", "lang": "python", "lang_version": "2.7"})).await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = u.post("/api/v1/execute", json!({"lang": "python"})).await;
    assert_eq!(r.status, 422, "{}", r.body);

    // Nothing was stored by any of the above.
    assert_eq!(u.get("/api/v1/user/executions").await.body["total"], 0);

    let r = u.get("/api/v1/executions/does-not-exist/result").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body["detail"].is_string());

    let r = u.get("/api/v1/user/executions?limit=100000").await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = u.delete("/api/v1/executions/whatever").await;
    assert_eq!(r.status, 403, "{}", r.body);
}
