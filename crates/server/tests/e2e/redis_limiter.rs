//! Two servers sharing one Redis (`limiter.redis_url`): rate limits, login lockouts, login
//! throttles and session ends hold across them; with Redis stopped requests are still served (fail open), and limits apply
//! again from the first request after it is back.

use integr8s_limiter::testing::RedisServer;

use crate::harness::Server;

/// Anonymous requests to the websocket group: 5 per minute per address (its 404 counts too;
/// the event-stream group counts open streams, not requests).
const LIMITED: &str = "/api/v1/ws";
/// What an allowed request to [`LIMITED`] is answered: no such route.
const SERVED: u16 = 404;

async fn status(http: &reqwest::Client, server: &Server, path: &str) -> u16 {
    http.get(format!("{}{path}", server.base))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn login(http: &reqwest::Client, server: &Server, password: &str) -> u16 {
    http.post(format!("{}/api/v1/auth/login", server.base))
        .form(&[("username", "user"), ("password", password)])
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test]
async fn servers_sharing_redis_share_limits_and_fail_open_while_it_is_down() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let env = [
        ("INTEGR8S_RATE_LIMIT__ENABLED", "true"),
        ("INTEGR8S_LIMITER__REDIS_URL", url.as_str()),
        ("INTEGR8S_LIMITER__KEY_PREFIX", "e2e:"),
        ("INTEGR8S_AUTH__MAX_LOGIN_ATTEMPTS", "3"),
    ];
    let (a, b) = (Server::start(&env).await, Server::start(&env).await);
    let http = reqwest::Client::new();

    for (i, server) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        assert_eq!(status(&http, server, LIMITED).await, SERVED, "request {i}");
    }
    assert_eq!(
        status(&http, &b, LIMITED).await,
        429,
        "five were counted across both"
    );
    assert_eq!(status(&http, &a, LIMITED).await, 429);

    // Failed logins on one server lock the account on the other.
    assert_eq!(login(&http, &a, "wrong-password").await, 401);
    assert_eq!(login(&http, &b, "wrong-password").await, 401);
    assert_eq!(login(&http, &a, "wrong-password").await, 423);
    assert_eq!(login(&http, &b, "user123").await, 423);

    redis.stop();
    for i in 0..8 {
        assert_eq!(
            status(&http, &a, LIMITED).await,
            SERVED,
            "served without Redis ({i})"
        );
    }
    assert_eq!(status(&http, &b, "/api/v1/health/live").await, 200);

    redis.restart().await;
    // The restarted Redis is empty; every request is counted again from the first one on.
    for (i, server) in [&b, &a, &b, &a, &b].into_iter().enumerate() {
        assert_eq!(
            status(&http, server, LIMITED).await,
            SERVED,
            "request {i} after the restart"
        );
    }
    assert_eq!(status(&http, &a, LIMITED).await, 429);
    assert_eq!(status(&http, &b, LIMITED).await, 429);
}

#[tokio::test]
async fn servers_sharing_redis_share_login_throttles() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let env = [
        ("INTEGR8S_LIMITER__REDIS_URL", url.as_str()),
        ("INTEGR8S_LIMITER__KEY_PREFIX", "e2e-auth:"),
        ("INTEGR8S_AUTH__LOGIN_PER_IP_PER_MINUTE", "3"),
    ];
    let (a, b) = (Server::start(&env).await, Server::start(&env).await);

    // Logins from one address are counted across both servers.
    let http = reqwest::Client::new();
    a.user().await;
    assert_eq!(login(&http, &b, "wrong-password").await, 401);
    assert_eq!(login(&http, &a, "wrong-password").await, 401);
    assert_eq!(login(&http, &b, "user123").await, 429);
}
