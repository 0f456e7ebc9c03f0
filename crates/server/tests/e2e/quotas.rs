//! Per-user quotas over HTTP: saved scripts (count and size), custom settings (count and size),
//! subscription filters, queued executions; and the saved scripts listing in pages.

use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};
use crate::notifications::put;

fn script(name: &str, text: &str) -> Value {
    json!({"name": name, "script": text, "lang": "python", "lang_version": "3.11"})
}

/// The contract's domain error shape: a string `detail` and the error's `type`.
fn assert_domain_error(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.body["detail"].is_string(), "{}", r.body);
    assert_eq!(r.body["type"], kind, "{}", r.body);
}

/// The contract's validation shape: a list of `{loc, msg, type}` under `detail`.
fn assert_validation_error(r: &Resp, loc_prefix: &[&str]) {
    assert_eq!(r.status, 422, "{}", r.body);
    let issues = r.body["detail"].as_array().expect("detail list");
    assert!(!issues.is_empty());
    let loc: Vec<&str> = issues[0]["loc"]
        .as_array()
        .expect("loc")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(loc.starts_with(loc_prefix), "{}", r.body);
    assert!(issues[0]["msg"].is_string() && issues[0]["type"].is_string());
}

#[tokio::test]
async fn saved_scripts_are_capped_in_count_and_size_and_listed_in_pages() {
    let s = Server::start(&[
        ("INTEGR8S_QUOTAS__MAX_SAVED_SCRIPTS", "3"),
        ("INTEGR8S_QUOTAS__MAX_SAVED_SCRIPT_BYTES", "1000"),
    ])
    .await;
    let u = s.new_user("keeper").await;
    let other = s.new_user("neighbour").await;

    let big = "x".repeat(1001);
    let r = u.post("/api/v1/scripts", script("big", &big)).await;
    assert_validation_error(&r, &["body", "script"]);
    // Multi-byte text counts in bytes: 400 characters of 3 bytes each.
    let wide = "€".repeat(400);
    let r = u.post("/api/v1/scripts", script("wide", &wide)).await;
    assert_validation_error(&r, &["body", "script"]);

    let mut ids = Vec::new();
    for i in 0..3 {
        let r = u
            .post("/api/v1/scripts", script(&format!("s{i}"), "print(1)"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.body["script_id"].as_str().unwrap().to_owned());
    }
    let r = u.post("/api/v1/scripts", script("s3", "print(1)")).await;
    assert_domain_error(&r, 403, "QuotaExceededError");
    // An update past the size cap is refused too; the quota is per user.
    let r = put(
        &u,
        &format!("/api/v1/scripts/{}", ids[0]),
        json!({"script": big}),
    )
    .await;
    assert_validation_error(&r, &["body", "script"]);
    let r = other
        .post("/api/v1/scripts", script("mine", "print(2)"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Deleting one makes room.
    assert_eq!(
        u.delete(&format!("/api/v1/scripts/{}", ids[2]))
            .await
            .status,
        204
    );
    let r = u.post("/api/v1/scripts", script("s4", "print(1)")).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Pages: total counts all, limit and offset walk through them without repeats.
    let all = u.get("/api/v1/scripts").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["total"], 3);
    let mut seen = Vec::new();
    for offset in 0..4 {
        let page = u
            .get(&format!("/api/v1/scripts?limit=1&offset={offset}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["total"], 3);
        for s in page.body["scripts"].as_array().unwrap() {
            seen.push(s["script_id"].as_str().unwrap().to_owned());
        }
    }
    let listed: Vec<String> = all.body["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["script_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, listed);
    for bad in ["limit=0", "limit=501", "limit=x", "offset=-1"] {
        let r = u.get(&format!("/api/v1/scripts?{bad}")).await;
        assert_validation_error(&r, &["query"]);
    }
}

#[tokio::test]
async fn custom_settings_and_subscription_filters_are_capped() {
    let s = Server::start(&[
        ("INTEGR8S_QUOTAS__MAX_CUSTOM_SETTINGS", "2"),
        ("INTEGR8S_QUOTAS__MAX_CUSTOM_SETTING_BYTES", "64"),
        ("INTEGR8S_QUOTAS__MAX_SUBSCRIPTION_TAGS", "3"),
    ])
    .await;
    let u = s.new_user("settler").await;
    const BASE: &str = "/api/v1/user/settings/";

    let r = put(&u, &format!("{BASE}custom/a"), json!({"v": 1})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(&u, &format!("{BASE}custom/b"), json!({"v": 2})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(&u, &format!("{BASE}custom/c"), json!({"v": 3})).await;
    assert_validation_error(&r, &["body"]);
    // Changing a key that exists is not a new one.
    let r = put(&u, &format!("{BASE}custom/a"), json!({"v": 4})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(
        &u,
        &format!("{BASE}custom/b"),
        json!({"v": "y".repeat(100)}),
    )
    .await;
    assert_validation_error(&r, &["body"]);
    let r = put(
        &u,
        BASE,
        json!({"custom_settings": {"a": 1, "b": 2, "c": 3}}),
    )
    .await;
    assert_validation_error(&r, &["body", "custom_settings"]);
    let r = put(&u, BASE, json!({"custom_settings": {"a": "z".repeat(100)}})).await;
    assert_validation_error(&r, &["body", "custom_settings", "a"]);
    let r = u.get(BASE).await;
    assert_eq!(
        r.body["custom_settings"],
        json!({"a": {"v": 4}, "b": {"v": 2}})
    );

    let path = "/api/v1/notifications/subscriptions/in_app";
    let r = put(
        &u,
        path,
        json!({"enabled": true, "include_tags": ["a", "b", "c", "d"]}),
    )
    .await;
    assert_validation_error(&r, &["body", "include_tags"]);
    let r = put(
        &u,
        path,
        json!({"enabled": true, "exclude_tags": ["t".repeat(101)]}),
    )
    .await;
    assert_validation_error(&r, &["body", "exclude_tags"]);
    let r = put(
        &u,
        path,
        json!({"enabled": true, "timezone": "T".repeat(101)}),
    )
    .await;
    assert_validation_error(&r, &["body", "timezone"]);
    let r = put(
        &u,
        path,
        json!({"enabled": true, "include_tags": ["a", "b", "c"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Submits until refused; returns the ids accepted and the refusal.
async fn submit_until_refused(c: &Client, at_most: usize) -> (Vec<String>, Option<Resp>) {
    let mut ids = Vec::new();
    for _ in 0..at_most {
        let r = c
            .post(
                "/api/v1/execute",
                json!({"script": "import time\ntime.sleep(30)", "lang": "python", "lang_version": "3.11"}),
            )
            .await;
        if r.status != 200 {
            return (ids, Some(r));
        }
        ids.push(r.body["execution_id"].as_str().unwrap().to_owned());
    }
    (ids, None)
}

#[tokio::test]
async fn one_user_cannot_queue_more_than_their_share() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
        ("INTEGR8S_EXECUTION__MAX_PER_USER", "1"),
        ("INTEGR8S_QUOTAS__MAX_PENDING_PER_USER", "3"),
        ("INTEGR8S_EXECUTION__MAX_QUEUE_LENGTH", "10"),
    ])
    .await;
    let hog = s.new_user("hog").await;
    let (ids, refused) = submit_until_refused(&hog, 10).await;
    let refused = refused.expect("the hog is refused at some point");
    assert_domain_error(&refused, 429, "QuotaExceededError");
    assert!(refused.headers.get("retry-after").is_some());
    // At most three wait; one more may have started already.
    assert!((3..=4).contains(&ids.len()), "{}", ids.len());
    // Someone else is not refused because of the hog's backlog.
    let other = s.new_user("bystander").await;
    let r = other
        .post(
            "/api/v1/execute",
            json!({"script": "print('mine')", "lang": "python", "lang_version": "3.11"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for id in ids {
        hog.post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
            .await;
    }
}
