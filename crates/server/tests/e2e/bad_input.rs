//! Bad input gets the contract's status and JSON shape, never a 500, and stores nothing.

use serde_json::{json, Value};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::Server;

/// Announces an 11 MiB body and sends part of it over a raw connection: the server must answer
/// 413 without waiting for (or storing) the rest. Returns the status and the JSON body.
async fn oversized_post(base: &str, cookie: &str, csrf: &str) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/execute HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        11 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server may close before taking all of this; that is fine.
    let _ = conn.write_all(&vec![b'x'; 64 * 1024]).await;
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let json = body.find('{').map(|i| &body[i..]).and_then(|b| {
        serde_json::Deserializer::from_str(b)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
    });
    (status, json.unwrap_or(Value::Null))
}

fn is_validation_shape(v: &Value) -> bool {
    v["detail"].is_array() || v["detail"].is_string()
}

#[tokio::test]
async fn malformed_requests_are_rejected_cleanly() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let url = format!("{}/api/v1/execute", s.base);

    let r = u
        .send(
            u.http
                .post(&url)
                .header("X-CSRF-Token", &u.csrf)
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(is_validation_shape(&r.body), "{}", r.body);

    let r = u
        .send(
            u.http
                .post(&url)
                .header("X-CSRF-Token", &u.csrf)
                .header("Content-Type", "text/plain")
                .body("print(1)"),
        )
        .await;
    assert!(
        r.status == 422 || r.status == 415,
        "{} {}",
        r.status,
        r.body
    );
    assert!(is_validation_shape(&r.body), "{}", r.body);

    let (status, body) = oversized_post(&s.base, &u.cookie, &u.csrf).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["detail"], "Request too large. Maximum size is 10.0MB");

    let r = u
        .post("/api/v1/execute", json!({"script": "x".repeat(50_001)}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = u
        .post(
            "/api/v1/execute",
            json!({"script": "print(1)", "lang": "cobol"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("cobol"), "{}", r.body);

    let r = u
        .post(
            "/api/v1/execute",
            json!({"script": "print(1)", "lang": "python", "lang_version": "2.7"}),
        )
        .await;
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
