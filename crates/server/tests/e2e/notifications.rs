//! Notifications: created when executions finish, the inbox operations, subscriptions with
//! their validation, the live stream, signed webhook delivery with retries, Slack delivery, the
//! dead-letter queue and stored throttling.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use integr8s_core::notification::NotificationStatus;
use integr8s_core::ports::{DlqStore, NotificationStore};
use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server, DEADLINE};

/// Throttling off and loopback webhooks allowed, as a local test deployment would run.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("INTEGR8S_NOTIFICATIONS__THROTTLE_MAX_PER_WINDOW", "0"),
    ("INTEGR8S_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS", "true"),
];

pub(crate) async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(
        c.http
            .put(format!("{}{path}", c.base))
            .header("X-CSRF-Token", &c.csrf)
            .json(&body),
    )
    .await
}

async fn list(c: &Client, query: &str) -> Resp {
    let r = c.get(&format!("/api/v1/notifications{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

/// Waits until the inbox holds a notification about `execution_id`.
async fn notification_for(c: &Client, execution_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = list(c, &format!("?include_tags=exec:{execution_id}")).await;
        if let Some(n) = r.body["notifications"].as_array().and_then(|v| v.first()) {
            return n.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no notification for {execution_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn run(c: &Client, script: &str) -> String {
    let id = c.submit(script).await;
    c.wait_terminal(&id).await;
    id
}

#[tokio::test]
async fn finished_executions_notify_and_the_inbox_works() {
    let s = Server::start(ENV).await;
    let u = s.new_user("notif-owner").await;
    let other = s.new_user("notif-other").await;

    let ok = run(&u, "print('hi')").await;
    let n = notification_for(&u, &ok).await;
    assert_eq!(n["subject"], format!("Execution Completed: {ok}"));
    assert!(
        n["body"]
            .as_str()
            .unwrap()
            .starts_with("Your execution completed successfully. Duration: "),
        "{n}"
    );
    assert_eq!(n["severity"], "medium");
    assert_eq!(n["channel"], "in_app");
    assert_eq!(n["status"], "delivered");
    assert_eq!(
        n["tags"],
        json!([
            "execution",
            "completed",
            "entity:execution",
            format!("exec:{ok}")
        ])
    );
    assert_eq!(n["action_url"], format!("/api/v1/executions/{ok}/result"));
    assert!(n["read_at"].is_null());

    let bad = run(&u, "import sys\nsys.exit(3)").await;
    let f = notification_for(&u, &bad).await;
    assert_eq!(f["subject"], format!("Execution Failed: {bad}"));
    assert_eq!(
        f["body"],
        "Your execution failed: script_error (exit code 3)."
    );
    assert_eq!(f["severity"], "high");

    let r = list(&u, "").await;
    assert_eq!(r.headers["cache-control"], "private, no-cache");
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["unread_count"], 2);
    assert_eq!(
        r.body["notifications"][0]["notification_id"], f["notification_id"],
        "newest first"
    );
    let r = list(&u, "?include_tags=completed&include_tags=nothing").await;
    assert_eq!(r.body["total"], 1);
    let r = list(&u, "?exclude_tags=failed&tag_prefix=exec:").await;
    assert_eq!(
        r.body["notifications"][0]["notification_id"],
        n["notification_id"]
    );
    let r = list(&u, "?limit=1&offset=1").await;
    assert_eq!(
        (
            r.body["total"].as_u64(),
            r.body["notifications"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    assert_eq!(list(&other, "").await.body["total"], 0);

    let id = n["notification_id"].as_str().unwrap();
    // Someone else's notification does not exist for them.
    assert_eq!(
        put(
            &other,
            &format!("/api/v1/notifications/{id}/read"),
            json!({})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        other
            .delete(&format!("/api/v1/notifications/{id}"))
            .await
            .status,
        404
    );

    assert_eq!(
        put(&u, &format!("/api/v1/notifications/{id}/read"), json!({}))
            .await
            .status,
        204
    );
    assert_eq!(
        u.get("/api/v1/notifications/unread-count").await.body,
        json!({"unread_count": 1})
    );
    let r = list(&u, "?status=read").await;
    assert_eq!(r.body["total"], 1);
    assert!(r.body["notifications"][0]["read_at"].is_string());
    let r = put(&u, "/api/v1/notifications/nope/read", json!({})).await;
    assert_eq!(r.status, 404);
    assert!(r.body["detail"].is_string());

    assert_eq!(
        u.post("/api/v1/notifications/mark-all-read", json!({}))
            .await
            .status,
        204
    );
    assert_eq!(
        u.post("/api/v1/notifications/mark-all-read", json!({}))
            .await
            .status,
        204
    );
    assert_eq!(
        u.get("/api/v1/notifications/unread-count").await.body["unread_count"],
        0
    );

    let r = u.delete(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"message": "Notification deleted"}))
    );
    assert_eq!(
        u.delete(&format!("/api/v1/notifications/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(list(&u, "").await.body["total"], 1);

    // One notification per execution.
    assert_eq!(
        list(&u, &format!("?include_tags=exec:{bad}")).await.body["total"],
        1
    );
}

#[tokio::test]
async fn inbox_refuses_anonymous_and_bad_input() {
    let s = Server::start(ENV).await;
    let anon = reqwest::Client::new();
    for path in [
        "/api/v1/notifications",
        "/api/v1/notifications/unread-count",
        "/api/v1/notifications/subscriptions",
        "/api/v1/events/notifications/stream",
    ] {
        let r = anon.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let u = s.user().await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?offset=-1",
        "?status=bogus",
    ] {
        let r = u.get(&format!("/api/v1/notifications{query}")).await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert!(r.body["detail"].is_array(), "{}", r.body);
    }
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/email",
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(r.status, 422);
    for body in [
        json!({}),
        json!({"enabled": "maybe"}),
        json!({"enabled": true, "severities": ["extreme"]}),
        json!({"enabled": true, "webhook_url": "http://example.com/hook"}),
        json!({"enabled": true, "webhook_url": "ftp://example.com"}),
        json!({"enabled": true}),
    ] {
        let r = put(
            &u,
            "/api/v1/notifications/subscriptions/webhook",
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/slack",
        json!({"enabled": true, "slack_webhook": "https://example.com/x"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "slack_webhook"]));
}

#[tokio::test]
async fn subscriptions_default_and_filter_the_inbox() {
    let s = Server::start(ENV).await;
    let u = s.new_user("notif-subs").await;
    let r = u.get("/api/v1/notifications/subscriptions").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "private, no-cache");
    let subs = r.body["subscriptions"].as_array().unwrap();
    let channels: Vec<_> = subs
        .iter()
        .map(|s| s["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["in_app", "webhook", "slack"]);
    assert!(subs.iter().all(|s| s["enabled"] == true
        && s["timezone"] == "UTC"
        && s["batch_interval_minutes"] == 60));

    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/in_app",
        json!({"enabled": true, "severities": ["high", "urgent"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["severities"], json!(["high", "urgent"]));
    assert_eq!(r.body["channel"], "in_app");
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/webhook",
        json!({"enabled": false}),
    )
    .await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(false)));

    // Medium (completed) is filtered out of the inbox: listed as skipped, never unread.
    let ok = run(&u, "print(1)").await;
    let n = notification_for(&u, &ok).await;
    assert_eq!(n["status"], "skipped");
    let bad = run(&u, "raise SystemExit(2)").await;
    assert_eq!(notification_for(&u, &bad).await["status"], "delivered");
    assert_eq!(
        u.get("/api/v1/notifications/unread-count").await.body["unread_count"],
        1
    );

    let r = u.get("/api/v1/notifications/subscriptions").await;
    let in_app = &r.body["subscriptions"][0];
    assert_eq!(in_app["severities"], json!(["high", "urgent"]));
    assert_eq!(r.body["subscriptions"][1]["enabled"], false);
}

#[tokio::test]
async fn the_stream_pushes_new_notifications() {
    let s = Server::start(ENV).await;
    let u = s.new_user("notif-stream").await;
    let mut stream = u
        .http
        .get(format!("{}/api/v1/events/notifications/stream", u.base))
        .header("Cookie", &u.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = run(&u, "print('pushed')").await;
    let text = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while !text.contains("\r\n\r\n") {
            let chunk = stream.chunk().await.unwrap().expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await
    .expect("a frame");
    let frame = text.split("\r\n\r\n").next().unwrap();
    let mut lines = frame.split("\r\n");
    // Its SSE id (the seq of its `notification_created`), for a resume with Last-Event-ID.
    let id_line = lines.next().unwrap_or_default();
    assert!(
        id_line
            .strip_prefix("id: ")
            .is_some_and(|seq| seq.parse::<i64>().is_ok()),
        "no initial frame before it: {text:?}"
    );
    assert_eq!(lines.next(), Some("event: notification"), "{text:?}");
    let data: Value =
        serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["subject"], format!("Execution Completed: {id}"));
    assert_eq!(data["channel"], "in_app");
    assert_eq!(data["status"], "delivered");
    assert!(data["read_at"].is_null());
    for key in [
        "notification_id",
        "body",
        "action_url",
        "created_at",
        "severity",
        "tags",
    ] {
        assert!(data.get(key).is_some(), "{key} missing: {data}");
    }
}

/// Requests received by the test's HTTP receiver.
#[derive(Default)]
pub(crate) struct Received {
    requests: Vec<(String, HeaderMap, String)>,
}

/// A receiver on 127.0.0.1: `/hook` fails with 500 `hook_failures` times then answers 200,
/// `/fail` always fails, `/slack` answers 200.
pub(crate) async fn receiver(hook_failures: usize) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let state = received.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let path = uri.path().to_owned();
                let mut r = state.lock().unwrap();
                r.requests.push((path.clone(), headers, body));
                let seen = r.requests.iter().filter(|(p, ..)| *p == path).count();
                match path.as_str() {
                    "/hook" if seen <= hook_failures => StatusCode::INTERNAL_SERVER_ERROR,
                    "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::OK,
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn requests_to(r: &Arc<Mutex<Received>>, path: &str) -> Vec<(HeaderMap, String)> {
    r.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(p, ..)| p == path)
        .map(|(_, h, b)| (h.clone(), b.clone()))
        .collect()
}

pub(crate) async fn wait_requests(
    r: &Arc<Mutex<Received>>,
    path: &str,
    n: usize,
) -> Vec<(HeaderMap, String)> {
    let start = Instant::now();
    loop {
        let got = requests_to(r, path);
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{path}: {} of {n} requests",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_store(s: &Server) -> integr8s_store::SqliteStore {
    integr8s_store::SqliteStore::open(s.data_dir.join("integr8s.db").to_str().unwrap())
        .await
        .unwrap()
}

/// Waits until the delivery of `notification_id` on `channel` is settled.
async fn settled(
    store: &integr8s_store::SqliteStore,
    notification_id: &str,
    channel: &str,
) -> NotificationStatus {
    let start = Instant::now();
    loop {
        let deliveries = store.deliveries(notification_id).await.unwrap();
        if let Some(d) = deliveries.iter().find(|d| d.channel.as_str() == channel) {
            if matches!(
                d.status,
                NotificationStatus::Delivered | NotificationStatus::Failed
            ) {
                return d.status;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{channel} delivery of {notification_id} never settled: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new user subscribes a webhook to `url` and runs `script`; waits until the webhook delivery
/// of its notification has failed for good. Returns the store and the notification's id.
async fn failed_webhook_delivery(
    s: &Server,
    user: &str,
    url: String,
    script: &str,
) -> (integr8s_store::SqliteStore, String) {
    let u = s.new_user(user).await;
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/webhook",
        json!({"enabled": true, "webhook_url": url}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = run(&u, script).await;
    let n = notification_for(&u, &id).await;
    let notification_id = n["notification_id"].as_str().unwrap().to_owned();
    let store = open_store(s).await;
    assert_eq!(
        settled(&store, &notification_id, "webhook").await,
        NotificationStatus::Failed
    );
    (store, notification_id)
}

#[tokio::test]
async fn webhook_and_slack_deliveries_are_signed_and_retried() {
    let (base, received) = receiver(2).await;
    let s = Server::start(ENV).await;
    let u = s.new_user("notif-hooks").await;
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/webhook",
        json!({"enabled": true, "webhook_url": format!("{base}/hook")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.body["webhook_secret"]
        .as_str()
        .expect("a signing secret")
        .to_owned();
    assert_eq!(secret.len(), 64);
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/slack",
        json!({"enabled": true, "slack_webhook": format!("{base}/slack")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Updating keeps the secret.
    let r = put(
        &u,
        "/api/v1/notifications/subscriptions/webhook",
        json!({"enabled": true, "include_tags": ["execution"]}),
    )
    .await;
    assert_eq!(r.body["webhook_secret"], secret.as_str());

    let id = run(&u, "print('hooked')").await;
    let n = notification_for(&u, &id).await;
    let notification_id = n["notification_id"].as_str().unwrap();

    let hooks = wait_requests(&received, "/hook", 3).await;
    for (headers, body) in &hooks {
        let ts: i64 = headers["x-integr8s-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let expected =
            integr8s_engine::notifications::sign_webhook(secret.as_bytes(), ts, body.as_bytes());
        assert_eq!(headers["x-integr8s-signature"].to_str().unwrap(), expected);
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["notification_id"], notification_id);
        assert_eq!(v["subject"], format!("Execution Completed: {id}"));
        assert_eq!(v["severity"], "medium");
        assert_eq!(v["action_url"], format!("/api/v1/executions/{id}/result"));
        assert!(v["timestamp"].is_string() && v["tags"].is_array() && v["body"].is_string());
    }
    let slack = wait_requests(&received, "/slack", 1).await;
    let v: Value = serde_json::from_str(&slack[0].1).unwrap();
    assert_eq!(v["text"], format!("Execution Completed: {id}"));
    let attachment = &v["attachments"][0];
    assert_eq!(attachment["color"], "#ff9900");
    assert_eq!(attachment["footer"], "Integr8sCode Notifications");
    assert_eq!(
        attachment["actions"][0]["url"],
        format!("/api/v1/executions/{id}/result")
    );
    assert!(slack[0].0.get("x-integr8s-signature").is_none());

    let store = open_store(&s).await;
    assert_eq!(
        settled(&store, notification_id, "webhook").await,
        NotificationStatus::Delivered
    );
    assert_eq!(
        settled(&store, notification_id, "slack").await,
        NotificationStatus::Delivered
    );
    let webhook = store
        .deliveries(notification_id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.channel.as_str() == "webhook")
        .unwrap();
    assert_eq!(webhook.attempts, 3, "two failures, then delivered");
    assert_eq!(
        requests_to(&received, "/hook").len(),
        3,
        "no request after delivery"
    );
}

#[tokio::test]
async fn failing_webhooks_end_in_the_dead_letter_queue() {
    let (base, received) = receiver(0).await;
    let mut env = ENV.to_vec();
    env.push(("INTEGR8S_NOTIFICATIONS__MAX_DELIVERY_ATTEMPTS", "2"));
    let s = Server::start(&env).await;
    let (store, notification_id) =
        failed_webhook_delivery(&s, "notif-dlq", format!("{base}/fail"), "print('lost')").await;
    let notification_id = notification_id.as_str();
    assert_eq!(requests_to(&received, "/fail").len(), 2);
    let d = store.deliveries(notification_id).await.unwrap().remove(0);
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));

    let start = Instant::now();
    let message = loop {
        let filter = integr8s_core::ports::dlq::DlqFilter {
            group: Some("notification-delivery".into()),
            limit: 10,
            ..Default::default()
        };
        let (messages, _) = store.list_dlq_messages(&filter).await.unwrap();
        if let Some(m) = messages.into_iter().next() {
            break m;
        }
        assert!(start.elapsed() < DEADLINE, "nothing dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(message.attempts, 2);
    assert!(message.error.contains("HTTP 500"), "{}", message.error);
    assert_eq!(
        message.event.envelope.aggregate_id.as_deref(),
        Some(notification_id)
    );

    // An operator's retry from the DLQ gives the delivery a new series of attempts.
    let admin = s.admin().await;
    let r = admin
        .post(
            &format!("/api/v1/dlq/messages/{}/retry", message.message_id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_requests(&received, "/fail", 4).await;
    let start = Instant::now();
    while store.deliveries(notification_id).await.unwrap()[0].status != NotificationStatus::Failed {
        assert!(
            start.elapsed() < DEADLINE,
            "the retried delivery never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.deliveries(notification_id).await.unwrap()[0].attempts,
        2
    );
}

#[tokio::test]
async fn throttling_is_counted_per_user_and_severity() {
    let env = [("INTEGR8S_NOTIFICATIONS__THROTTLE_MAX_PER_WINDOW", "1")];
    let s = Server::start(&env).await;
    let u = s.new_user("notif-throttle").await;
    let first = run(&u, "print(1)").await;
    notification_for(&u, &first).await;
    run(&u, "print(2)").await;
    // Results are handled in order: once the failure is notified, the second success was seen.
    let bad = run(&u, "raise SystemExit(1)").await;
    notification_for(&u, &bad).await;
    let r = list(&u, "?include_tags=completed").await;
    assert_eq!(
        r.body["total"], 1,
        "the second medium notification is throttled: {}",
        r.body
    );
    assert_eq!(list(&u, "").await.body["total"], 2);
}

/// Without the testing switch, a webhook URL naming a loopback or private address is accepted
/// as a well-formed `https://` URL, but no request ever reaches it: the delivery fails at once
/// (no retries) with the reason, not the URL.
#[tokio::test]
async fn deliveries_to_private_addresses_are_refused() {
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let s = Server::start(&[("INTEGR8S_NOTIFICATIONS__THROTTLE_MAX_PER_WINDOW", "0")]).await;
    let url = format!("https://127.0.0.1:{port}/hook");
    let (store, notification_id) =
        failed_webhook_delivery(&s, "notif-ssrf", url, "print('ssrf')").await;
    let d = store.deliveries(&notification_id).await.unwrap().remove(0);
    assert_eq!(d.attempts, 1, "{d:?}");
    assert_eq!(
        d.last_error.as_deref(),
        Some("refused: the target is not a public address")
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}
