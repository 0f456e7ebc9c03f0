//! The default rate limits against the running binary, as the web frontend uses the API: a
//! person clicking quickly (a page load a second for half a minute, each opening the
//! notification stream and making the page's lookups) is never refused, while a script
//! hammering one endpoint still is, and rule patterns end at a path segment.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Client, Server};

const ON: [(&str, &str); 1] = [("INTEGR8S_RATE_LIMIT__ENABLED", "true")];

/// The read-only lookups a page of the web frontend makes.
const PAGE_LOOKUPS: [&str; 5] = [
    "/api/v1/auth/me",
    "/api/v1/k8s-limits",
    "/api/v1/example-scripts",
    "/api/v1/user/settings/",
    "/api/v1/notifications?limit=20",
];

async fn get_status(c: &Client, path: &str) -> u16 {
    c.get(path).await.status
}

/// Opens the notification stream as a page does; the response stays open while it is held.
async fn open_notifications(c: &Client) -> reqwest::Response {
    c.http
        .get(format!("{}/api/v1/events/notifications/stream", c.base))
        .header("Cookie", &c.cookie)
        .send()
        .await
        .expect("notification stream")
}

#[tokio::test]
async fn a_person_clicking_through_the_frontend_is_never_refused() {
    let s = Server::start(&ON).await;
    let u = s.new_user("clicker").await;
    let mut refused = Vec::new();
    let mut page = None;
    let start = Instant::now();
    for load in 0..30u32 {
        // A page load replaces the previous page and its stream.
        drop(page.take());
        let stream = open_notifications(&u).await;
        if stream.status() != 200 {
            refused.push(format!(
                "load {load}: notification stream {}",
                stream.status()
            ));
        }
        page = Some(stream);
        for path in PAGE_LOOKUPS {
            let status = get_status(&u, path).await;
            if status != 200 {
                refused.push(format!("load {load}: {path} {status}"));
            }
        }
        // One page load a second.
        let next = start + Duration::from_secs(u64::from(load) + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    assert!(refused.is_empty(), "refused: {refused:#?}");
}

#[tokio::test]
async fn a_script_hammering_one_endpoint_is_still_limited() {
    let s = Server::start(&ON).await;
    let u = s.new_user("hammer").await;
    let mut first_refusal = None;
    for i in 0..400u32 {
        let r = u.get("/api/v1/auth/me").await;
        if r.status == 429 {
            assert_eq!(r.body["detail"], "Rate limit exceeded", "{}", r.body);
            first_refusal = Some(i);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(
        first_refusal,
        Some(300),
        "refused after its per-minute budget"
    );

    // Streams are limited by how many are open at once, not per minute.
    let mut open = Vec::new();
    for _ in 0..10 {
        let r = open_notifications(&u).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "10");
        open.push(r);
    }
    let r = open_notifications(&u).await;
    assert_eq!(r.status(), 429, "an eleventh stream at once");
    assert!(r.headers().get("retry-after").is_some());
    // Closing one frees its place.
    drop(open.pop());
    let deadline = Instant::now() + crate::harness::DEADLINE;
    loop {
        let r = open_notifications(&u).await;
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rule_patterns_end_at_a_path_segment() {
    let s = Server::start(&ON).await;
    let u = s.new_user("boundaries").await;
    let id = u.submit("print(1)").await;
    u.wait_terminal(&id).await;
    // Reading results is not submitting: `^/api/v1/execute` (10 a minute) does not apply.
    for _ in 0..20 {
        let r = u.get(&format!("/api/v1/executions/{id}/result")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.headers["x-ratelimit-limit"], "60");
    }
    let r = u
        .post(&format!("/api/v1/executions/{id}/retry"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-ratelimit-limit"], "60");
    // Submitting is: its own budget of 10, spent only by the two submissions, not by the 20
    // reads and the retry above.
    let body = json!({"script": "print(2)", "lang": "python", "lang_version": "3.11"});
    let r = u.post("/api/v1/execute", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-ratelimit-limit"], "10");
    assert_eq!(r.headers["x-ratelimit-remaining"], "8");
    // `/auth/me` has its own rule; the rest of `/auth/` keeps the original's.
    let me = u.get("/api/v1/auth/me").await;
    assert_eq!(me.headers["x-ratelimit-limit"], "300");
    let r = u.get("/api/v1/auth/meh").await;
    assert_eq!(r.headers["x-ratelimit-limit"], "20");
}
