//! Admin user management against the running binary: search, create with a role, update,
//! deactivation that ends sessions, password reset, unlock of a locked account, delete with
//! cascade counts, the overview, and the errors (401, 403, 404, 409, 422, 400).

use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};

/// Rate limiting is covered elsewhere; it must not interfere with these request bursts.
pub const NO_LIMITS: [(&str, &str); 1] = [("INTEGR8S_RATE_LIMIT__ENABLED", "false")];

pub async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(
        c.http
            .put(format!("{}{path}", c.base))
            .header("X-CSRF-Token", &c.csrf)
            .json(&body),
    )
    .await
}

pub async fn user_id(c: &Client) -> String {
    let r = c.get("/api/v1/auth/me").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["user_id"].as_str().expect("user_id").to_owned()
}

async fn create(admin: &Client, name: &str, role: &str) -> Value {
    let body = json!({"username": name, "email": format!("{name}@example.com"), "password": "password123", "role": role});
    let r = admin.post("/api/v1/admin/users/", body).await;
    assert_eq!(r.status, 200, "create {name}: {}", r.body);
    r.body
}

#[tokio::test]
async fn admin_lists_searches_creates_and_updates_users() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;

    let created = create(&admin, "Moder_1", "moderator").await;
    assert_eq!(created["role"], "moderator");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["bypass_rate_limit"], false);
    assert_eq!(created["has_custom_limits"], false);
    create(&admin, "moderX1", "user").await;
    let id = created["user_id"].as_str().unwrap().to_owned();

    let r = admin.get("/api/v1/admin/users/?search=MODER").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 2, "case-insensitive search");
    let r = admin.get("/api/v1/admin/users/?search=r_1").await;
    assert_eq!(r.body["total"], 1, "`_` matches itself only: {}", r.body);
    assert_eq!(r.body["users"][0]["user_id"], id.as_str());
    let r = admin.get("/api/v1/admin/users/?role=moderator").await;
    assert_eq!(r.body["total"], 1);
    let r = admin.get("/api/v1/admin/users/?limit=1&offset=1").await;
    assert_eq!(
        (r.body["limit"].clone(), r.body["offset"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(r.body["users"].as_array().unwrap().len(), 1);
    assert!(
        r.body["total"].as_u64().unwrap() >= 4,
        "seeded users and the new ones"
    );

    // The slash-less collection path redirects, as FastAPI does.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{}/api/v1/admin/users?limit=5", server.base))
        .header("Cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/api/v1/admin/users/?limit=5");

    let r = admin.get(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["username"], "Moder_1");

    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{id}"),
        json!({"email": "new@example.com", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email"], "new@example.com");
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["username"], "Moder_1", "unset fields are kept");

    // Conflicts.
    let dup = json!({"username": "Moder_1", "email": "x@example.com", "password": "password123"});
    let r = admin.post("/api/v1/admin/users/", dup).await;
    assert_eq!(
        (r.status, r.body["detail"].clone()),
        (409, json!("Username already exists"))
    );
    let dup = json!({"username": "fresh", "email": "new@example.com", "password": "password123"});
    let r = admin.post("/api/v1/admin/users/", dup).await;
    assert_eq!(
        (r.status, r.body["detail"].clone()),
        (409, json!("User already exists"))
    );
    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{id}"),
        json!({"username": "user"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

#[tokio::test]
async fn admin_user_routes_reject_bad_input_and_other_users() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let user = server.user().await;

    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/users/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let r = user.get("/api/v1/admin/users/").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["type"], "AdminAccessRequiredError");
    let r = user
        .post(
            "/api/v1/admin/users/",
            json!({"username": "x", "email": "x@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(r.status, 403);

    for query in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "role=root",
        "limit=abc",
    ] {
        let r = admin.get(&format!("/api/v1/admin/users/?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert!(r.body["detail"].is_array());
    }
    let bad = [
        json!({"username": "a", "email": "a@example.com", "password": "short"}),
        json!({"username": "a", "email": "not-an-email", "password": "password123"}),
        json!({"username": "a", "email": "a@example.com", "password": "password123", "role": "root"}),
        json!({"email": "a@example.com", "password": "password123"}),
    ];
    for body in bad {
        let r = admin.post("/api/v1/admin/users/", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    let missing = "00000000-0000-0000-0000-000000000000";
    for r in [
        admin.get(&format!("/api/v1/admin/users/{missing}")).await,
        put(
            &admin,
            &format!("/api/v1/admin/users/{missing}"),
            json!({"role": "user"}),
        )
        .await,
        admin
            .delete(&format!("/api/v1/admin/users/{missing}"))
            .await,
        admin
            .get(&format!("/api/v1/admin/users/{missing}/overview"))
            .await,
        admin
            .post(
                &format!("/api/v1/admin/users/{missing}/reset-password"),
                json!({"new_password": "password123"}),
            )
            .await,
        admin
            .post(&format!("/api/v1/admin/users/{missing}/unlock"), json!({}))
            .await,
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["type"], "NotFoundError");
    }
    let uid = user_id(&user).await;
    let r = admin
        .post(
            &format!("/api/v1/admin/users/{uid}/reset-password"),
            json!({"new_password": "short"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{uid}"),
        json!({"password": "short"}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = admin
        .delete(&format!("/api/v1/admin/users/{uid}?cascade=maybe"))
        .await;
    assert_eq!(r.status, 422);

    let own = user_id(&admin).await;
    let r = admin.delete(&format!("/api/v1/admin/users/{own}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["detail"], "Cannot delete your own account");
}

#[tokio::test]
async fn deactivation_password_reset_and_unlock_take_effect() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let victim = server.new_user("victim").await;
    let id = user_id(&victim).await;

    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{id}"),
        json!({"is_active": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        victim.get("/api/v1/auth/me").await.status,
        401,
        "the session stops working"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.base))
        .form(&[("username", "victim"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a deactivated user cannot log in");
    put(
        &admin,
        &format!("/api/v1/admin/users/{id}"),
        json!({"is_active": true}),
    )
    .await;

    let r = admin
        .post(
            &format!("/api/v1/admin/users/{id}/reset-password"),
            json!({"new_password": "brand-new-pass"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["message"],
        format!("Password reset successfully for user {id}")
    );
    assert!(
        crate::harness::Client::login(&server.base, "victim", "password123")
            .await
            .is_err()
    );
    server.login("victim", "brand-new-pass").await;

    // Lock the account with failed logins, then unlock it.
    let http = reqwest::Client::new();
    let mut locked = false;
    for _ in 0..10 {
        let r = http
            .post(format!("{}/api/v1/auth/login", server.base))
            .form(&[("username", "victim"), ("password", "wrong-password")])
            .send()
            .await
            .unwrap();
        if r.status() == 423 {
            locked = true;
            break;
        }
    }
    assert!(locked, "failed logins lock the account");
    assert!(
        crate::harness::Client::login(&server.base, "victim", "brand-new-pass")
            .await
            .is_err()
    );
    let r = admin
        .post(&format!("/api/v1/admin/users/{id}/unlock"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"user_id": id, "message": "Account unlocked"})
    );
    server.login("victim", "brand-new-pass").await;
}

#[tokio::test]
async fn delete_cascades_and_reports_counts() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let doomed = server.new_user("doomed").await;
    let id = user_id(&doomed).await;
    let execution = doomed.submit("print('bye')").await;
    doomed.wait_terminal(&execution).await;
    let r = doomed
        .post(
            "/api/v1/scripts",
            json!({"name": "s", "script": "print(1)", "lang": "python", "lang_version": "3.11"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(
        &doomed,
        "/api/v1/user/settings/theme",
        json!({"theme": "dark"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = doomed.get("/api/v1/notifications").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let notifications = r.body["total"].clone();

    let r = admin
        .get(&format!("/api/v1/admin/users/{id}/overview"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["username"], "doomed");
    assert_eq!(r.body["derived_counts"]["succeeded"], 1);
    assert_eq!(r.body["derived_counts"]["terminal_total"], 1);
    assert!(r.body["stats"]["total_events"].as_u64().unwrap() >= 1);
    assert!(r.body["stats"]["start_time"].is_string());
    assert_eq!(r.body["rate_limit_summary"]["bypass_rate_limit"], false);
    let recent = r.body["recent_events"].as_array().unwrap();
    assert!(!recent.is_empty() && recent.len() <= 10);
    assert!(recent
        .iter()
        .all(|e| e["event_type"].as_str().unwrap().starts_with("execution_")));

    let r = admin.delete(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user_deleted"], true);
    assert_eq!(r.body["executions"], 1);
    assert_eq!(r.body["sagas"], 1);
    assert!(
        r.body["events"].as_u64().unwrap() >= 5,
        "the execution's pipeline events: {}",
        r.body
    );
    assert_eq!(r.body["saved_scripts"], 1);
    assert_eq!(r.body["notifications"], notifications);
    assert!(
        r.body["user_settings"].as_u64().unwrap() >= 1,
        "the theme change: {}",
        r.body
    );
    assert_eq!(
        admin.get(&format!("/api/v1/admin/users/{id}")).await.status,
        404
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/executions/{execution}/result"))
            .await
            .status,
        404
    );
    assert_eq!(doomed.get("/api/v1/auth/me").await.status, 401);
    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/users/{id}"))
            .await
            .status,
        404
    );

    // Without cascade only the account goes.
    let keeper = server.new_user("keeper").await;
    let kid = user_id(&keeper).await;
    let kept = keeper.submit("print(1)").await;
    keeper.wait_terminal(&kept).await;
    let r = admin
        .delete(&format!("/api/v1/admin/users/{kid}?cascade=false"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["executions"].clone(), r.body["events"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/executions/{kept}/result"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn admin_user_views_show_the_rate_limit_override() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let created = create(&admin, "limited_1", "user").await;
    let id = created["user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["global_multiplier"], 1.0,
        "no override: the neutral multiplier"
    );

    let rule = json!({"endpoint_pattern": "^/api/v1/scripts", "group": "api", "requests": 5,
                      "window_seconds": 60, "algorithm": "sliding_window", "priority": 10});
    let body = json!({"bypass_rate_limit": true, "global_multiplier": 2.5, "rules": [rule]});
    let r = put(&admin, &format!("/api/v1/admin/rate-limits/{id}"), body).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let expect = |user: &Value| {
        assert_eq!(user["bypass_rate_limit"], true, "{user}");
        assert_eq!(user["global_multiplier"], 2.5, "{user}");
        assert_eq!(user["has_custom_limits"], true, "{user}");
    };
    let r = admin.get(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect(&r.body);
    let r = admin.get("/api/v1/admin/users/?search=limited_1").await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    expect(&r.body["users"][0]);
    let r = admin
        .get(&format!("/api/v1/admin/users/{id}/overview"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect(&r.body["user"]);
    expect(&r.body["rate_limit_summary"]);

    // An override without rules and without bypass reads as no custom limits.
    let r = put(
        &admin,
        &format!("/api/v1/admin/rate-limits/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.get(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(
        (
            r.body["bypass_rate_limit"].clone(),
            r.body["has_custom_limits"].clone()
        ),
        (json!(false), json!(false))
    );
}
