//! System settings against the running binary: configuration-derived defaults, validation,
//! the audit log, reset, and the settings really applied by the pipeline (run limits,
//! concurrency, password length, session lifetime, lockout).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::admin_users::{put, NO_LIMITS};
use crate::harness::{Client, Server};

async fn event_time(admin: &Client, execution_id: &str, event_type: &str) -> DateTime<Utc> {
    let filters = json!({"filters": {"aggregate_id": execution_id, "event_types": [event_type]}});
    let r = admin.post("/api/v1/admin/events/browse", filters).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ts = r.body["events"][0]["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no {event_type} for {execution_id}: {}", r.body));
    ts.parse().expect("timestamp")
}

fn cookie_max_age(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            v.split(';')
                .map(str::trim)
                .find(|p| p.starts_with("Max-Age="))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn defaults_come_from_the_configuration_and_input_is_validated() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let r = admin.get("/api/v1/admin/settings/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let defaults = r.body.clone();
    assert_eq!(defaults["max_timeout_seconds"], 10);
    assert_eq!(defaults["memory_limit"], "256Mi");
    assert_eq!(defaults["cpu_limit"], "1000m");
    assert_eq!(defaults["max_concurrent_executions"], 4);
    assert_eq!(defaults["session_timeout_minutes"], 1440);
    assert_eq!(defaults["log_level"], "INFO");
    assert_eq!(defaults["sampling_rate"], 0.1);

    let bad = [
        json!({"max_timeout_seconds": 0}),
        json!({"max_timeout_seconds": 3601}),
        json!({"memory_limit": "512MB"}),
        json!({"cpu_limit": "2"}),
        json!({"max_concurrent_executions": 101}),
        json!({"password_min_length": 7}),
        json!({"session_timeout_minutes": 4}),
        json!({"max_login_attempts": 11}),
        json!({"lockout_duration_minutes": 61}),
        json!({"metrics_retention_days": 6}),
        json!({"log_level": "TRACE"}),
        json!({"sampling_rate": 1.5}),
        json!({"enable_tracing": "yes"}),
    ];
    for body in bad {
        let r = put(&admin, "/api/v1/admin/settings/", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert!(r.body["detail"].is_array());
    }
    let r = admin.get("/api/v1/admin/settings/").await;
    assert_eq!(r.body, defaults, "rejected updates change nothing");

    let user = server.user().await;
    assert_eq!(user.get("/api/v1/admin/settings/").await.status, 403);
    assert_eq!(
        put(&user, "/api/v1/admin/settings/", json!({}))
            .await
            .status,
        403
    );
    assert_eq!(
        user.post("/api/v1/admin/settings/reset", json!({}))
            .await
            .status,
        403
    );
    assert_eq!(user.get("/api/v1/admin/settings/audit").await.status, 403);
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/settings/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        admin
            .get("/api/v1/admin/settings/audit?limit=0")
            .await
            .status,
        422
    );
}

#[tokio::test]
async fn updated_settings_are_applied_audited_and_reset() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let user = server.user().await;

    // Two overlapping runs while four slots are allowed ...
    let a = user.submit("import time\ntime.sleep(1)").await;
    let b = user.submit("import time\ntime.sleep(1)").await;
    user.wait_terminal(&a).await;
    user.wait_terminal(&b).await;
    assert!(
        event_time(&admin, &b, "execution_accepted").await
            < event_time(&admin, &a, "result_stored").await
    );

    let update = json!({
        "max_timeout_seconds": 2,
        "memory_limit": "128Mi",
        "cpu_limit": "500m",
        "max_concurrent_executions": 1,
        "password_min_length": 12,
        "session_timeout_minutes": 5,
        "max_login_attempts": 3,
        "lockout_duration_minutes": 5,
        "log_level": "WARNING",
    });
    let r = put(&admin, "/api/v1/admin/settings/", update).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["max_concurrent_executions"], 1);
    assert_eq!(
        r.body["metrics_retention_days"], 30,
        "missing fields take the schema defaults"
    );
    assert_eq!(admin.get("/api/v1/admin/settings/").await.body, r.body);

    // ... and one at a time now: the second is accepted only after the first ended.
    let c = user.submit("import time\ntime.sleep(0.5)").await;
    let d = user.submit("import time\ntime.sleep(0.5)").await;
    user.wait_terminal(&c).await;
    user.wait_terminal(&d).await;
    let (first, second) = if event_time(&admin, &c, "execution_accepted").await
        <= event_time(&admin, &d, "execution_accepted").await
    {
        (c, d)
    } else {
        (d, c)
    };
    assert!(
        event_time(&admin, &second, "execution_accepted").await
            >= event_time(&admin, &first, "result_stored").await
    );
    assert_eq!(
        admin.get("/api/v1/admin/executions/queue").await.body["max_concurrent"],
        1
    );

    // The timeout of new executions.
    let r = user.run("import time\ntime.sleep(5)").await;
    assert_eq!(r["status"], "timeout", "{r}");
    let limits = reqwest::Client::new()
        .get(format!("{}/api/v1/k8s-limits", server.base))
        .send()
        .await
        .unwrap();
    let limits: Value = limits.json().await.unwrap();
    assert_eq!(
        (
            limits["execution_timeout"].clone(),
            limits["memory_limit"].clone()
        ),
        (json!(2), json!("128Mi"))
    );

    // Password length at registration.
    let http = reqwest::Client::new();
    let register = |name: &str, password: &str| {
        http.post(format!("{}/api/v1/auth/register", server.base))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
            .send()
    };
    assert_eq!(
        register("shortpw", "elevenchars").await.unwrap().status(),
        422
    );
    assert_eq!(
        register("longpw", "twelve-chars").await.unwrap().status(),
        200
    );

    // Session lifetime of new logins.
    let r = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .form(&[("username", "longpw"), ("password", "twelve-chars")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(cookie_max_age(&r), ["Max-Age=300", "Max-Age=300"]);

    // Three failed attempts lock the account.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = http
            .post(format!("{}/api/v1/auth/login", server.base))
            .form(&[("username", "longpw"), ("password", "wrong-password")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 423]);

    let r = admin.get("/api/v1/admin/settings/audit").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1);
    let entry = &r.body["entries"][0];
    assert_eq!(entry["action"], "system_settings_updated");
    assert_eq!(entry["username"], "admin");
    assert_eq!(entry["old_values"]["max_concurrent_executions"], 4);
    assert_eq!(entry["new_values"]["max_concurrent_executions"], 1);

    let r = admin.post("/api/v1/admin/settings/reset", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["max_timeout_seconds"], 10);
    assert_eq!(r.body["max_concurrent_executions"], 4);
    assert_eq!(r.body["session_timeout_minutes"], 1440);
    assert_eq!(admin.get("/api/v1/admin/settings/").await.body, r.body);
    let r = admin.get("/api/v1/admin/settings/audit?limit=1").await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["entries"][0]["action"], "system_settings_reset");
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 1);

    // Survives a restart (stored, not held in memory).
    put(
        &admin,
        "/api/v1/admin/settings/",
        json!({"max_timeout_seconds": 7}),
    )
    .await;
    let mut server = server;
    server.restart().await;
    let admin = server.admin().await;
    assert_eq!(
        admin.get("/api/v1/admin/settings/").await.body["max_timeout_seconds"],
        7
    );
}
