//! Authentication and CSRF failures carry the contract's status and JSON shape.

use serde_json::json;

use crate::harness::{Client, Server};

#[tokio::test]
async fn login_cookie_csrf_and_their_failures() {
    let s = Server::start(&[]).await;
    let http = reqwest::Client::new();

    let r = http
        .post(format!("{}/api/v1/auth/login", s.base))
        .form(&[("username", "user"), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Invalid credentials");

    let r = http
        .get(format!("{}/api/v1/auth/me", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Not authenticated");

    let user = s.user().await;
    assert!(user.cookie.contains("access_token="));
    let me = user.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "user");
    assert_eq!(me.body["role"], "user");

    // Unsafe method without the CSRF header.
    let r = user
        .send(
            user.http
                .post(format!("{}/api/v1/execute", s.base))
                .json(&json!({"script": "print(1)"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, json!({"detail": "CSRF validation failed"}));

    // A header that does not match the cookie.
    let r = user
        .send(
            user.http
                .post(format!("{}/api/v1/execute", s.base))
                .header("X-CSRF-Token", "forged.0000")
                .json(&json!({"script": "print(1)"})),
        )
        .await;
    assert_eq!(r.status, 403);

    // A forged JWT.
    let forged = Client {
        http: reqwest::Client::new(),
        base: s.base.clone(),
        cookie: "access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl".into(),
        csrf: String::new(),
    };
    let r = forged.get("/api/v1/auth/me").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["detail"], "Invalid credentials");
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    let s = Server::start(&[("INTEGR8S_AUTH__MAX_LOGIN_ATTEMPTS", "3")]).await;
    let http = reqwest::Client::new();
    for attempt in 1..=3 {
        let r = http
            .post(format!("{}/api/v1/auth/login", s.base))
            .form(&[("username", "user"), ("password", "nope-nope")])
            .send()
            .await
            .unwrap();
        // The attempt that reaches the limit already answers 423.
        let expected = if attempt < 3 { 401 } else { 423 };
        assert_eq!(r.status(), expected, "attempt {attempt}");
    }
    let r = http
        .post(format!("{}/api/v1/auth/login", s.base))
        .form(&[("username", "user"), ("password", "user123")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 423);
    // Another account is not affected.
    s.admin().await;
}
