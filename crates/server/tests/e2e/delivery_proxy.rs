//! Webhook and Slack deliveries ignore the proxy settings of the environment: a proxy would
//! resolve the target itself, past the check that a target is a public address. A server
//! started with every proxy variable pointing at a listener of this test delivers straight to
//! the target, and the listener is never contacted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::harness::Server;
use crate::notifications::{put, receiver, run, wait_requests, ENV};

/// A listener standing in for a proxy: counts the connections it is offered and drops them.
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, seen)
}

#[tokio::test]
async fn deliveries_ignore_proxy_settings() {
    let (target, received) = receiver(0).await;
    let (proxy, offered) = counting_listener().await;
    let mut env: Vec<(&str, &str)> = ENV.to_vec();
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        env.push((var, proxy.as_str()));
    }
    env.push(("NO_PROXY", ""));
    env.push(("no_proxy", ""));
    let server = Server::start(&env).await;

    let u = server.new_user("proxied").await;
    for (path, body) in [
        (
            "/api/v1/notifications/subscriptions/webhook",
            json!({"enabled": true, "webhook_url": format!("{target}/hook")}),
        ),
        (
            "/api/v1/notifications/subscriptions/slack",
            json!({"enabled": true, "slack_webhook": format!("{target}/slack")}),
        ),
    ] {
        let r = put(&u, path, body).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    run(&u, "print('direct')").await;
    wait_requests(&received, "/hook", 1).await;
    wait_requests(&received, "/slack", 1).await;
    assert_eq!(
        offered.load(Ordering::SeqCst),
        0,
        "a delivery went through the proxy"
    );
}
