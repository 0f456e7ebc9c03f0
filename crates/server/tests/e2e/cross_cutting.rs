//! Cross-cutting HTTP behaviour: security headers, CORS from the configuration, the body limit,
//! Cache-Control, and the client address behind trusted proxies only.

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Server, BIN};

const ORIGIN: &str = "https://app.example.com";

#[tokio::test]
async fn security_headers_cache_control_and_body_limit() {
    let server = Server::start(&[]).await;
    let http = reqwest::Client::new();
    for path in ["/api/v1/health/live", "/api/v1/no-such-route"] {
        let r = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert!(h["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=63072000"));
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
    let r = http
        .get(format!("{}/api/v1/k8s-limits", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let r = http
        .get(format!("{}/api/v1/example-scripts", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=600");

    // Only the headers are sent: a declared length above 10 MiB is refused before the body.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        10 * 1024 * 1024 + 1
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(crate::harness::DEADLINE, socket.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    assert_eq!(body["detail"], "Request too large. Maximum size is 10.0MB");
}

#[tokio::test]
async fn cors_allows_only_configured_origins_with_credentials() {
    let server = Server::start(&[(
        "INTEGR8S_SERVER__CORS_ORIGINS",
        &format!("{ORIGIN}, https://other.example.com"),
    )])
    .await;
    let http = reqwest::Client::new();
    let r = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/execute", server.base),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-csrf-token",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        assert!(methods.contains(m), "{methods}");
    }
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("x-csrf-token"));

    let r = http
        .get(format!("{}/api/v1/health/live", server.base))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }

    let r = http
        .get(format!("{}/api/v1/health/live", server.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Five anonymous requests (the websocket group's limit per minute) from `forwarded`, then one
/// more.
async fn sixth_is_refused(server: &Server, forwarded: &str) -> bool {
    let http = reqwest::Client::new();
    let mut last = 0;
    for _ in 0..6 {
        let r = http
            .get(format!("{}/api/v1/ws", server.base))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
    }
    last == 429
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    // Loopback is trusted by default: each forwarded client has its own bucket.
    let server = Server::start(&[("INTEGR8S_RATE_LIMIT__ENABLED", "true")]).await;
    assert!(sixth_is_refused(&server, "203.0.113.1").await);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/ws", server.base))
        .header("x-forwarded-for", "203.0.113.2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a second forwarded client has its own bucket"
    );
    drop(server);

    // The test client is not a trusted proxy here: the header is ignored, one bucket for all.
    let server = Server::start(&[
        ("INTEGR8S_RATE_LIMIT__ENABLED", "true"),
        ("INTEGR8S_SERVER__TRUSTED_PROXIES", "10.0.0.0/8"),
    ])
    .await;
    assert!(sixth_is_refused(&server, "203.0.113.1").await);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/ws", server.base))
        .header("x-forwarded-for", "203.0.113.2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "a forged X-Forwarded-For must not open a new bucket"
    );
}

#[test]
fn bad_cross_cutting_settings_name_their_key() {
    for (var, value, key) in [
        ("INTEGR8S_SERVER__CORS_ORIGINS", "*", "server.cors_origins"),
        (
            "INTEGR8S_SERVER__TRUSTED_PROXIES",
            "10.0.0.0/40",
            "server.trusted_proxies",
        ),
        (
            "INTEGR8S_RATE_LIMIT__ENABLED",
            "maybe",
            "rate_limit.enabled",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("check-config")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{err}");
    }
}
