//! Our OpenAPI document: served at /openapi.json and printed by `integr8s openapi`, the same.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Server, BIN};

#[tokio::test]
async fn served_and_printed_documents_match() {
    let server = Server::start(&[]).await;
    let r = reqwest::Client::new()
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    for path in [
        "/api/v1/execute",
        "/api/v1/auth/login",
        "/api/v1/admin/rate-limits/{user_id}",
    ] {
        assert!(served["paths"][path].is_object(), "{path} missing");
    }
    let put = &served["paths"]["/api/v1/admin/rate-limits/{user_id}"]["put"];
    let schema = &put["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(schema, "#/components/schemas/RateLimitUpdateRequest");

    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, served);
}
