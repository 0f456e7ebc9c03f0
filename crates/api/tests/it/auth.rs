//! Authentication: cookie sessions, JWT checks, CSRF binding, lockout and the audit events.

use axum::http::{header, Method, StatusCode};
use integr8s_api::auth::jwt;
use integr8s_core::event::EventType;
use serde_json::json;

use crate::common::*;

async fn stored_types(app: &TestApp, types: &[EventType]) -> Vec<EventType> {
    let events = app.state.store.events_after(types, 0, 1000).await.unwrap();
    events.iter().map(|e| e.envelope.event_type()).collect()
}

#[tokio::test]
async fn register_login_me_logout_round_trip() {
    let app = TestApp::new().await;
    let body = json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD, "role": "admin"});
    let registered = app.post_json("/api/v1/auth/register", &body, None).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.text());
    let user = registered.json();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["role"], "user", "role in the body is ignored");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["is_superuser"], false);
    assert_eq!(user["user_id"].as_str().unwrap().len(), 36);
    assert!(user.get("password_hash").is_none());

    let login = app.login("alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(login.headers[header::PRAGMA], "no-cache");
    let body = login.json();
    assert_eq!(body["message"], "Login successful");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["role"], "user");
    let cookies = login.set_cookies();
    let access = cookies
        .iter()
        .find(|c| c.starts_with("access_token="))
        .unwrap();
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("csrf_token="))
        .unwrap();
    for c in [access, csrf] {
        assert!(
            c.contains("SameSite=Strict") && c.contains("Path=/") && c.contains("Max-Age=86400"),
            "{c}"
        );
        assert!(!c.contains("Secure"), "not secure unless configured: {c}");
    }
    assert!(access.contains("HttpOnly"));
    assert!(!csrf.contains("HttpOnly"));
    assert!(csrf.contains(body["csrf_token"].as_str().unwrap()));

    let session = app.user("bob").await;
    let me = app.get("/api/v1/auth/me", Some(&session)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(me.json()["username"], session.username.as_str());
    assert_eq!(me.json()["user_id"], session.user_id.as_str());

    let logout = app
        .send(request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&session),
            None,
        ))
        .await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.json(), json!({"message": "Logout successful"}));
    let cleared = logout.set_cookies();
    assert_eq!(cleared.len(), 2);
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );

    let anonymous = app
        .send(request(Method::POST, "/api/v1/auth/logout", None, None))
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);

    let types = stored_types(
        &app,
        &[
            EventType::UserRegistered,
            EventType::UserLoggedIn,
            EventType::UserLoggedOut,
        ],
    )
    .await;
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::UserRegistered)
            .count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::UserLoggedIn)
            .count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::UserLoggedOut)
            .count(),
        1
    );
}

#[tokio::test]
async fn secure_cookies_when_configured() {
    let mut options = Options::default();
    options.config.cookie_secure = true;
    let app = TestApp::with(options).await;
    app.register("carol").await;
    let login = app.login("carol", PASSWORD).await;
    assert!(login.set_cookies().iter().all(|c| c.contains("; Secure")));
}

#[tokio::test]
async fn registration_conflicts_and_validation() {
    let app = TestApp::new().await;
    assert_eq!(app.register("dave").await.status, StatusCode::OK);
    assert_domain_error(
        &app.register("dave").await,
        StatusCode::CONFLICT,
        "Username already registered",
        "ConflictError",
    );
    let same_email =
        json!({"username": "dave2", "email": "dave@example.com", "password": PASSWORD});
    let response = app
        .post_json("/api/v1/auth/register", &same_email, None)
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.json()["detail"], "Email already registered");

    let bad_email = json!({"username": "erin", "email": "not-an-email", "password": PASSWORD});
    let response = app
        .post_json("/api/v1/auth/register", &bad_email, None)
        .await;
    assert_validation_error(&response, &["body", "email"]);

    let short = json!({"username": "erin", "email": "erin@example.com", "password": "short"});
    let response = app.post_json("/api/v1/auth/register", &short, None).await;
    assert_validation_error(&response, &["body", "password"]);

    let missing = json!({"username": "erin", "email": "erin@example.com"});
    let issue = assert_validation_error(
        &app.post_json("/api/v1/auth/register", &missing, None).await,
        &["body", "password"],
    );
    assert_eq!(issue["type"], "missing");
    assert!(
        app.state
            .store
            .user_by_username("erin")
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}

#[tokio::test]
async fn login_failures() {
    let app = TestApp::new().await;
    app.register("frank").await;
    assert_domain_error(
        &app.login("frank", "wrong-password").await,
        StatusCode::UNAUTHORIZED,
        "Invalid credentials",
        "InvalidCredentialsError",
    );
    assert_domain_error(
        &app.login("nobody", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "Invalid credentials",
        "InvalidCredentialsError",
    );
    assert_eq!(stored_types(&app, &[EventType::AuthFailed]).await.len(), 2);

    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("grant_type=password"))
        .unwrap();
    let response = app.send(req).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<String> = response.json()["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["loc"][1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(locs, ["username", "password"]);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let app = TestApp::new().await;
    app.register("grace").await;
    for attempt in 1..5 {
        let response = app.login("grace", "wrong-password").await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    let locked = "Account temporarily locked due to too many failed attempts";
    assert_domain_error(
        &app.login("grace", "wrong-password").await,
        StatusCode::LOCKED,
        locked,
        "AccountLockedError",
    );
    assert_domain_error(
        &app.login("grace", PASSWORD).await,
        StatusCode::LOCKED,
        locked,
        "AccountLockedError",
    );

    // A success before the limit resets the counter.
    app.register("heidi").await;
    for _ in 0..4 {
        app.login("heidi", "wrong-password").await;
    }
    assert_eq!(app.login("heidi", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.login("heidi", "wrong-password").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_are_checked() {
    let app = TestApp::new().await;
    let session = app.user("ivan").await;
    let no_cookie = app.get("/api/v1/auth/me", None).await;
    assert_domain_error(
        &no_cookie,
        StatusCode::UNAUTHORIZED,
        "Not authenticated",
        "AuthenticationRequiredError",
    );

    let me = app.get("/api/v1/auth/me", Some(&session)).await.json();
    let ivan = me["user_id"].as_str().expect("user_id").to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, exp: i64, nbf: i64| jwt::Claims {
        sub: sub.to_owned(),
        exp,
        nbf,
        iat: nbf,
        gen: 0,
        stm: String::new(),
    };
    let forged = jwt::encode(
        &claims(&ivan, now + 3600, now),
        b"another-secret-another-secret-0000",
    )
    .unwrap();
    let expired = jwt::encode(&claims(&ivan, now - 10, now - 100), SECRET).unwrap();
    let not_yet = jwt::encode(&claims(&ivan, now + 3600, now + 600), SECRET).unwrap();
    let unknown_user = jwt::encode(&claims("ghost", now + 3600, now), SECRET).unwrap();
    // Signed with the right key for the right user, but without the user's session stamp.
    let no_stamp = jwt::encode(&claims(&ivan, now + 3600, now), SECRET).unwrap();
    let by_name = jwt::encode(&claims("ivan", now + 3600, now), SECRET).unwrap();
    for token in [
        forged,
        expired,
        not_yet,
        unknown_user,
        no_stamp,
        by_name,
        "garbage".to_owned(),
    ] {
        let bad = Session {
            cookie: format!("access_token={token}"),
            ..session.clone()
        };
        let response = app.get("/api/v1/auth/me", Some(&bad)).await;
        assert_domain_error(
            &response,
            StatusCode::UNAUTHORIZED,
            "Invalid credentials",
            "InvalidCredentialsError",
        );
    }
}

#[tokio::test]
async fn csrf_header_must_match_the_session() {
    let app = TestApp::new().await;
    let session = app.user("judy").await;
    let other = app.user("mallory").await;
    let body = json!({"script": "print(1)"});
    let csrf_failed = json!({"detail": "CSRF validation failed"});

    let missing = Session {
        csrf: String::new(),
        ..session.clone()
    };
    let response = app
        .post_json("/api/v1/execute", &body, Some(&missing))
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(response.json(), csrf_failed);

    let wrong = Session {
        csrf: "abc.def".into(),
        ..session.clone()
    };
    assert_eq!(
        app.post_json("/api/v1/execute", &body, Some(&wrong))
            .await
            .json(),
        csrf_failed
    );

    // Header and cookie agree, but the token was issued for another session.
    let cookie = session
        .cookie
        .split("; ")
        .map(|c| {
            if c.starts_with("csrf_token=") {
                format!("csrf_token={}", other.csrf)
            } else {
                c.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let swapped = Session {
        cookie,
        csrf: other.csrf.clone(),
        ..session.clone()
    };
    assert_eq!(
        app.post_json("/api/v1/execute", &body, Some(&swapped))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.post_json("/api/v1/execute", &body, Some(&session))
            .await
            .status,
        StatusCode::OK
    );
    // Reads are not checked.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&missing)).await.status,
        StatusCode::OK
    );
}
