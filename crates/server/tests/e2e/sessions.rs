//! Sessions against the running binary: every event that changes who an account is, or whether
//! its holder may act, ends that account's existing sessions at once; an old token never
//! authenticates as whoever holds its name later; the last active admin stays an admin; and
//! admin-set passwords follow the configured minimum length.

use serde_json::json;

use crate::admin_users::{put, user_id, NO_LIMITS};
use crate::harness::{Client, Server};

async fn assert_ended(c: &Client, what: &str) {
    let r = c.get("/api/v1/auth/me").await;
    assert_eq!(
        r.status, 401,
        "{what}: the old session still works: {}",
        r.body
    );
    assert_eq!(
        r.body["type"], "InvalidCredentialsError",
        "{what}: {}",
        r.body
    );
}

async fn register(server: &Server, name: &str, email: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", server.base))
        .json(&json!({"username": name, "email": email, "password": "password123"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200, "register {name}");
}

#[tokio::test]
async fn logout_ends_every_session_of_the_account() {
    let server = Server::start(&NO_LIMITS).await;
    let first = server.new_user("twice").await;
    let second = server.login("twice", "password123").await;
    let other = server.new_user("bystander").await;
    assert_eq!(second.get("/api/v1/auth/me").await.status, 200);

    let r = first.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ended(&first, "the logged-out cookie").await;
    assert_ended(&second, "another session of the same account").await;
    assert_eq!(
        other.get("/api/v1/auth/me").await.status,
        200,
        "other accounts keep their sessions"
    );
    let again = server.login("twice", "password123").await;
    assert_eq!(
        again.get("/api/v1/auth/me").await.status,
        200,
        "a new login works"
    );
}

#[tokio::test]
async fn account_changes_end_sessions() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;

    // Each change, made by the admin, ends the sessions the user had before it.
    let changes = [
        ("password", json!({"password": "another-password-1"})),
        ("role", json!({"role": "moderator"})),
        ("deactivation", json!({"is_active": false})),
        ("rename", json!({"username": "renamed_s"})),
    ];
    for (i, (what, body)) in changes.into_iter().enumerate() {
        let name = format!("changed{i}");
        let victim = server.new_user(&name).await;
        let id = user_id(&victim).await;
        let r = put(&admin, &format!("/api/v1/admin/users/{id}"), body).await;
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        assert_ended(&victim, what).await;
    }

    // A deactivated and reactivated account does not get its old sessions back.
    let victim = server.new_user("reactivated").await;
    let id = user_id(&victim).await;
    for active in [false, true] {
        let r = put(
            &admin,
            &format!("/api/v1/admin/users/{id}"),
            json!({"is_active": active}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_ended(&victim, "deactivation then reactivation").await;

    // A password reset ends them too.
    let victim = server.new_user("reset_me").await;
    let id = user_id(&victim).await;
    let r = admin
        .post(
            &format!("/api/v1/admin/users/{id}/reset-password"),
            json!({"new_password": "a-new-password-9"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ended(&victim, "password reset").await;
    server.login("reset_me", "a-new-password-9").await;
}

#[tokio::test]
async fn an_old_token_never_speaks_for_the_next_holder_of_its_name() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;

    // Rename, then someone else registers the freed name.
    let old = server.new_user("name_a").await;
    let id = user_id(&old).await;
    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{id}"),
        json!({"username": "name_a_moved"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    register(&server, "name_a", "someone-else@example.com").await;
    assert_ended(&old, "token of a renamed user, name taken again").await;

    // Deletion, then re-registration of the same name.
    let deleted = server.new_user("name_b").await;
    let id = user_id(&deleted).await;
    let r = admin.delete(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    register(&server, "name_b", "name_b2@example.com").await;
    assert_ended(&deleted, "token of a deleted user, name registered again").await;
    let fresh = server.login("name_b", "password123").await;
    assert_ne!(
        user_id(&fresh).await,
        id,
        "the new holder is another account"
    );
}

#[tokio::test]
async fn the_last_active_admin_stays_and_admin_passwords_follow_the_minimum() {
    let server = Server::start(&NO_LIMITS).await;
    let admin = server.admin().await;
    let me = user_id(&admin).await;

    for (field, body) in [
        ("role", json!({"role": "user"})),
        ("is_active", json!({"is_active": false})),
    ] {
        let r = put(&admin, &format!("/api/v1/admin/users/{me}"), body).await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", field]),
            "{}",
            r.body
        );
    }
    let r = admin.delete(&format!("/api/v1/admin/users/{me}")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(admin.get("/api/v1/auth/me").await.body["role"], "admin");

    // With a second active admin, the first may step down; the second then may not.
    let body = json!({"username": "admin_two", "email": "admin_two@example.com", "password": "password123", "role": "admin"});
    let r = admin.post("/api/v1/admin/users/", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = server.login("admin_two", "password123").await;
    let second_id = user_id(&second).await;
    let r = put(
        &admin,
        &format!("/api/v1/admin/users/{me}"),
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ended(&admin, "the demoted admin").await;
    let r = put(
        &second,
        &format!("/api/v1/admin/users/{second_id}"),
        json!({"role": "moderator"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);

    // Admin-set passwords follow the configured minimum length.
    let target = server.new_user("short_pw").await;
    let id = user_id(&target).await;
    let r = put(
        &second,
        "/api/v1/admin/settings/",
        json!({"password_min_length": 14}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(
        &second,
        &format!("/api/v1/admin/users/{id}"),
        json!({"password": "only-12-char"}),
    )
    .await;
    assert_eq!(r.status, 422, "update: {}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "password"]));
    let r = second
        .post(
            &format!("/api/v1/admin/users/{id}/reset-password"),
            json!({"new_password": "only-12-char"}),
        )
        .await;
    assert_eq!(r.status, 422, "reset: {}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "new_password"]));
    let r = second
        .post(
            &format!("/api/v1/admin/users/{id}/reset-password"),
            json!({"new_password": "fourteen-chars"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
