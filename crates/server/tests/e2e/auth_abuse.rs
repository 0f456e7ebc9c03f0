//! Unauthenticated abuse against the running binary: oversized credentials, throttles per client
//! address (through the trusted-proxy rule) and per account, parallel guesses that cannot slip
//! past the lockout, a stranger who cannot lock the owner out, a bounded number of password
//! hashes at once, and bounded audit records.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::admin_users::NO_LIMITS;
use crate::harness::Server;

/// A login from the client address `ip`, as the trusted loopback proxy forwards it.
async fn login_from(server: &Server, ip: &str, user: &str, password: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.base))
        .header("X-Forwarded-For", ip)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("login");
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").is_some();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status == 429 {
        assert!(retry_after, "429 without Retry-After: {body}");
    }
    (status, body)
}

async fn register_from(server: &Server, ip: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", server.base))
        .header("X-Forwarded-For", ip)
        .json(&body)
        .send()
        .await
        .expect("register");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Every setting of the unauthenticated throttles, here all off unless a test turns one on.
fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        NO_LIMITS[0],
        ("INTEGR8S_AUTH__LOGIN_PER_IP_PER_MINUTE", "0"),
        ("INTEGR8S_AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE", "0"),
        ("INTEGR8S_AUTH__REGISTER_PER_IP_PER_HOUR", "0"),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k, v));
    }
    env
}

fn assert_contract_error(status: u16, body: &Value, expected: u16, kind: &str) {
    assert_eq!(status, expected, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(body["type"], kind, "{body}");
}

#[tokio::test]
async fn oversized_credentials_are_refused_with_422() {
    let server = Server::start(&env(&[])).await;
    let long = "x".repeat(100_000);
    let cases = [
        (
            json!({"username": long, "email": "a@example.com", "password": "password123"}),
            "username",
        ),
        (
            json!({"username": "ok_name", "email": format!("{}@example.com", "e".repeat(300)), "password": "password123"}),
            "email",
        ),
        (
            json!({"username": "ok_name", "email": "a@example.com", "password": long}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let (status, r) = register_from(&server, "198.51.100.1", body).await;
        assert_eq!(status, 422, "{field}: {r}");
        assert_eq!(r["detail"][0]["loc"], json!(["body", field]), "{r}");
        assert_eq!(r["detail"][0]["type"], "string_too_long", "{r}");
    }
    for (user, password, field) in [
        (long.as_str(), "pw", "username"),
        ("user", long.as_str(), "password"),
    ] {
        let (status, r) = login_from(&server, "198.51.100.1", user, password).await;
        assert_eq!(status, 422, "{field}: {r}");
        assert_eq!(r["detail"][0]["loc"], json!(["body", field]), "{r}");
    }
}

#[tokio::test]
async fn logins_and_registrations_are_throttled_per_address_and_per_account() {
    let server = Server::start(&env(&[
        ("INTEGR8S_AUTH__LOGIN_PER_IP_PER_MINUTE", "4"),
        ("INTEGR8S_AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE", "6"),
        ("INTEGR8S_AUTH__REGISTER_PER_IP_PER_HOUR", "2"),
    ]))
    .await;

    // Spraying many accounts from one address.
    for i in 0..4 {
        let (status, _) =
            login_from(&server, "203.0.113.1", &format!("sprayed{i}"), "guess-1").await;
        assert_eq!(status, 401);
    }
    let (status, body) = login_from(&server, "203.0.113.1", "sprayed9", "guess-1").await;
    assert_contract_error(status, &body, 429, "RateLimitExceededError");
    // Another client address, as the trusted proxy reports it, has its own budget.
    let (status, _) = login_from(&server, "203.0.113.2", "sprayed9", "guess-1").await;
    assert_eq!(status, 401);

    // One account from many addresses.
    for i in 0..6 {
        let ip = format!("198.51.100.{}", 10 + i);
        let (status, _) = login_from(&server, &ip, "target", &format!("guess-{i}")).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let (status, body) = login_from(&server, "198.51.100.99", "target", "guess-x").await;
    assert_contract_error(status, &body, 429, "RateLimitExceededError");

    // Registrations per address.
    for i in 0..2 {
        let body = json!({"username": format!("reg{i}"), "email": format!("reg{i}@example.com"), "password": "password123"});
        assert_eq!(register_from(&server, "192.0.2.1", body).await.0, 200);
    }
    let body = json!({"username": "reg9", "email": "reg9@example.com", "password": "password123"});
    let (status, r) = register_from(&server, "192.0.2.1", body.clone()).await;
    assert_contract_error(status, &r, 429, "RateLimitExceededError");
    assert_eq!(register_from(&server, "192.0.2.2", body).await.0, 200);
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_lockout_and_a_stranger_cannot_lock_the_owner_out() {
    let server = Server::start(&env(&[("INTEGR8S_AUTH__MAX_LOGIN_ATTEMPTS", "3")])).await;
    let guesses = (0..12).map(|_| login_from(&server, "203.0.113.50", "user", "wrong-guess"));
    let statuses: Vec<u16> = join_all(guesses)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(
        refused, 2,
        "exactly max_login_attempts - 1 guesses answered before the lock: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 423)),
        "{statuses:?}"
    );

    // The stranger's address stays locked out, even with the right password...
    assert_eq!(
        login_from(&server, "203.0.113.50", "user", "user123")
            .await
            .0,
        423
    );
    // ...but the owner, from their own address, signs in.
    let (status, body) = login_from(&server, "198.51.100.7", "user", "user123").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn password_hashes_are_bounded_and_audit_records_too() {
    let server = Server::start(&env(&[
        ("INTEGR8S_AUTH__MAX_CONCURRENT_PASSWORD_HASHES", "1"),
        ("INTEGR8S_AUTH__PASSWORD_HASH_WAIT_MS", "0"),
    ]))
    .await;
    let attempts = (0..16).map(|i| {
        let ip = format!("203.0.113.{}", 100 + i);
        let server = &server;
        async move { login_from(server, &ip, &format!("nobody{i}"), "some-guess").await }
    });
    let answers = join_all(attempts).await;
    for (status, body) in &answers {
        match status {
            401 => {}
            503 => assert_contract_error(*status, body, 503, "ServiceUnavailableError"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        answers.iter().any(|(s, _)| *s == 503),
        "sixteen hashes at once with one place: some are refused"
    );

    // The audit record of a failure keeps the address the trusted proxy forwarded (not a raw
    // header) and a username no longer than the bound (longer ones are refused with 422).
    let longest = "n".repeat(64);
    assert_eq!(
        login_from(&server, "192.0.2.77", &longest, "guess").await.0,
        401
    );
    let longer = "n".repeat(65);
    assert_eq!(
        login_from(&server, "192.0.2.77", &longer, "guess").await.0,
        422
    );
    let admin = server.admin().await;
    let r = admin
        .post(
            "/api/v1/admin/events/browse",
            json!({"filters": {"event_types": ["auth_failed"], "search_text": "192.0.2.77"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1, "{}", r.body);
    let record = r.body["events"][0].to_string();
    assert!(record.contains(&longest), "{record}");
}
