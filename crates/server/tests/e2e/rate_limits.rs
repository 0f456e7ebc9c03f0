//! Rate limiting against the running binary: per-address and per-user buckets, the headers and
//! the 429 shape, per-user overrides (multiplier, extra rules, bypass) that apply at once and
//! survive a restart, and the admin routes' errors.

use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};

const ON: [(&str, &str); 1] = [("INTEGR8S_RATE_LIMIT__ENABLED", "true")];

async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(
        c.http
            .put(format!("{}{path}", c.base))
            .header("X-CSRF-Token", &c.csrf)
            .json(&body),
    )
    .await
}

fn header(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn me(c: &Client) -> Value {
    let r = c.get("/api/v1/auth/me").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn assert_refused(r: &Resp) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["detail"], "Rate limit exceeded");
    let retry = r.body["retry_after"].as_u64().expect("retry_after");
    assert!(retry >= 1);
    assert_eq!(header(r, "retry-after"), Some(retry.to_string()));
    let reset_at = r.body["reset_at"].as_str().expect("reset_at");
    assert!(
        reset_at.len() == 20 && reset_at.ends_with('Z') && &reset_at[10..11] == "T",
        "{reset_at}"
    );
    assert_eq!(header(r, "x-ratelimit-remaining").as_deref(), Some("0"));
}

#[tokio::test]
async fn anonymous_clients_are_limited_by_address_with_headers() {
    let server = Server::start(&ON).await;
    let http = reqwest::Client::new();
    // The websocket group allows 5 per minute; the 404 answers (no such route) still count.
    for i in 0..5 {
        let r = http
            .get(format!("{}/api/v1/ws", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
        assert!(r.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .is_ok());
    }
    let r = http
        .get(format!("{}/api/v1/ws", server.base))
        .send()
        .await
        .unwrap();
    let resp = Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.json().await.unwrap(),
    };
    assert_refused(&resp);
    // Other groups have their own buckets, and excluded paths carry no limit at all.
    let r = http
        .get(format!("{}/api/v1/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "60");
    let r = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .form(&[("username", "nobody"), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("x-ratelimit-limit").is_none());
}

#[tokio::test]
async fn overrides_apply_per_user_immediately_and_durably() {
    let mut server = Server::start(&ON).await;
    let admin = server.admin().await;
    let alice = server.new_user("alice_rl").await;
    let bob = server.new_user("bob_rl").await;
    let alice_id = me(&alice).await["user_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/rate-limits/{alice_id}");

    // Nothing stored yet.
    let r = admin.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rate_limit_config"], Value::Null);

    // 60/min × 0.05 = 3 requests for alice on the api group.
    let r = put(
        &admin,
        &path,
        json!({"global_multiplier": 0.05, "notes": "noisy"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["updated"], true);
    assert_eq!(r.body["config"]["global_multiplier"], 0.05);
    assert_eq!(r.body["config"]["notes"], "noisy");
    for _ in 0..3 {
        let r = alice.get("/api/v1/user/executions").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("3"));
    }
    assert_refused(&alice.get("/api/v1/user/executions").await);
    // Keyed by user: bob, from the same address, is unaffected.
    let r = bob.get("/api/v1/user/executions").await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("60"));

    let usage = admin.get(&path).await.body;
    assert_eq!(
        usage["current_usage"]["^/api/v1/.*"]["remaining"], 0,
        "{usage}"
    );
    assert_eq!(
        usage["current_usage"]["^/api/v1/.*"]["algorithm"],
        "sliding_window"
    );

    let r = admin.post(&format!("{path}/reset"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["message"],
        format!("Rate limits reset successfully for user {alice_id}")
    );
    assert_eq!(alice.get("/api/v1/user/executions").await.status, 200);

    // An extra rule with a higher priority, counted by token bucket.
    let rule = json!({"endpoint_pattern": "^/api/v1/user/executions", "group": "api", "requests": 2,
                      "window_seconds": 60, "algorithm": "token_bucket", "burst_multiplier": 1.0, "priority": 50});
    let r = put(&admin, &path, json!({"rules": [rule]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["config"]["rules"][0]["algorithm"], "token_bucket");
    assert_eq!(alice.get("/api/v1/user/executions").await.status, 200);
    assert_eq!(alice.get("/api/v1/user/executions").await.status, 200);
    assert_refused(&alice.get("/api/v1/user/executions").await);
    assert_eq!(
        alice.get("/api/v1/auth/me").await.status,
        200,
        "other paths keep the defaults"
    );

    // Bypass: no limit and no headers; it survives a restart (stored, no expiry).
    let r = put(
        &admin,
        &path,
        json!({"bypass_rate_limit": true, "rules": [rule]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.restart().await;
    let admin = server.admin().await;
    let alice = server.login("alice_rl", "password123").await;
    for _ in 0..5 {
        let r = alice.get("/api/v1/user/executions").await;
        assert_eq!(r.status, 200);
        assert!(r.headers.get("x-ratelimit-limit").is_none());
    }
    let config = &admin.get(&path).await.body["rate_limit_config"];
    assert_eq!(config["bypass_rate_limit"], true);
    assert_eq!(config["rules"].as_array().map(Vec::len), Some(1));
    assert!(config["created_at"].is_string() && config["updated_at"].is_string());
}

#[tokio::test]
async fn admin_routes_check_access_users_and_input() {
    let server = Server::start(&[]).await;
    let admin = server.admin().await;
    let user = server.user().await;
    let user_id = me(&user).await["user_id"].as_str().unwrap().to_owned();

    let defaults = admin.get("/api/v1/admin/rate-limits/defaults").await;
    assert_eq!(defaults.status, 200);
    let rules = defaults.body.as_array().unwrap();
    assert_eq!(rules.len(), 9);
    assert_eq!(
        rules[0],
        json!({"endpoint_pattern": "^/api/v1/execute", "group": "execution", "requests": 10,
        "window_seconds": 60, "algorithm": "sliding_window", "burst_multiplier": 1.5, "priority": 10, "enabled": true})
    );

    let anon = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/rate-limits/defaults", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let r = user
        .get(&format!("/api/v1/admin/rate-limits/{user_id}"))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["type"], "AdminAccessRequiredError");
    assert_eq!(
        put(
            &user,
            &format!("/api/v1/admin/rate-limits/{user_id}"),
            json!({})
        )
        .await
        .status,
        403
    );

    for r in [
        admin.get("/api/v1/admin/rate-limits/no-such-user").await,
        put(&admin, "/api/v1/admin/rate-limits/no-such-user", json!({})).await,
        admin
            .post("/api/v1/admin/rate-limits/no-such-user/reset", json!({}))
            .await,
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("no-such-user"));
    }

    let path = format!("/api/v1/admin/rate-limits/{user_id}");
    let rule = |patch: Value| {
        let mut r = json!({"endpoint_pattern": "^/api/v1/x", "group": "api", "requests": 5, "window_seconds": 60});
        r.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        r
    };
    for (body, field) in [
        (json!({"global_multiplier": -1}), "global_multiplier"),
        (json!({"global_multiplier": "lots"}), "global_multiplier"),
        (json!({"rules": [rule(json!({"requests": 0}))]}), "requests"),
        (
            json!({"rules": [rule(json!({"endpoint_pattern": "(["}))]}),
            "endpoint_pattern",
        ),
        (
            json!({"rules": [rule(json!({"algorithm": "magic"}))]}),
            "algorithm",
        ),
        (json!({"rules": [{"group": "api"}]}), "endpoint_pattern"),
    ] {
        let r = put(&admin, &path, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let locs = r.body["detail"].to_string();
        assert!(locs.contains(field), "{body}: {locs}");
    }
    // The minimal contract body (every field defaulted) is accepted.
    let r = put(&admin, &path, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["config"]["bypass_rate_limit"], false);
    assert_eq!(r.body["config"]["global_multiplier"], 1.0);
}
