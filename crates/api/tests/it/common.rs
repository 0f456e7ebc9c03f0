//! Test harness: the real router over a temporary SQLite store, the in-process bus and the
//! in-memory key/value store, driven with `oneshot` requests.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use integr8s_api::{ApiConfig, AppState};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{
    EventBus, ExecutorHealth, KeyValue, NewUser, RuntimeReport, Store, WorkerReport,
};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::user::Role;
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"test-secret-that-is-at-least-32-bytes-long";
pub const PASSWORD: &str = "correct-horse-battery";

pub struct TestApp {
    pub app: Router,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// A logged-in client: its cookies and CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub username: String,
    pub user_id: String,
    pub cookie: String,
    pub csrf: String,
}

pub struct Options {
    pub config: ApiConfig,
    pub all_runtimes_available: bool,
    pub sandbox_ready: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: ApiConfig {
                secret: SECRET.to_vec(),
                ..ApiConfig::default()
            },
            all_runtimes_available: true,
            sandbox_ready: true,
        }
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.db");
        let sqlite = integr8s_store::SqliteStore::open(path.to_str().unwrap())
            .await
            .unwrap();
        sqlite.migrate().await.unwrap();
        let sqlite = Arc::new(sqlite);
        let store: Arc<dyn Store> = sqlite.clone();
        let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
        let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
        let kv: Arc<dyn KeyValue> = Arc::new(integr8s_limiter::MemoryKeyValue::new());
        // What runs comes from a worker's lease in the store, as a worker process reports it;
        // the API's own registry is not probed.
        let mut installed = RuntimeRegistry::embedded();
        if options.all_runtimes_available {
            installed.assume_all_available();
        }
        let ready = options.sandbox_ready;
        let report = WorkerReport {
            worker_id: "api-test-worker".to_owned(),
            runtimes: installed
                .runtimes()
                .iter()
                .filter(|r| r.versions.iter().any(|v| v.available))
                .map(|r| RuntimeReport {
                    lang: r.lang.clone(),
                    versions: r.versions.iter().map(|v| v.version.clone()).collect(),
                })
                .collect(),
            executor: ExecutorHealth {
                ready,
                mode: if ready {
                    "test".into()
                } else {
                    "unavailable".into()
                },
                detail: (!ready).then(|| "no sandbox in tests".into()),
            },
        };
        let now = integr8s_core::now();
        store
            .renew_lease(&report, now, now + chrono::Duration::days(1))
            .await
            .unwrap();
        // What the server derives from its configuration while no settings are stored.
        let defaults = integr8s_core::system_settings::SystemSettings {
            max_timeout_seconds: options.config.run_limits.timeout_seconds,
            memory_limit: "256Mi".to_owned(),
            cpu_limit: "1000m".to_owned(),
            session_timeout_minutes: 1440,
            ..Default::default()
        };
        let settings =
            integr8s_core::effective_settings::EffectiveSettings::new(store.clone(), defaults);
        let state = AppState {
            store,
            settings,
            bus: bus.clone(),
            outbox: Outbox::new(events, bus, "api-test"),
            kv,
            registry: Arc::new(RuntimeRegistry::embedded()),
            workers: integr8s_api::WorkerView::default(),
            config: Arc::new(options.config),
            started_at: Instant::now(),
            rate_limits: integr8s_api::ratelimit::RateLimits::new(Arc::new(
                integr8s_limiter::MemoryRateLimiter::new(),
            )),
            streams: integr8s_api::streams::StreamHub::new(Default::default()),
        };
        Self {
            app: integr8s_api::router(state.clone()),
            state,
            _dir: dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            response.into_body().collect(),
        )
        .await
        .expect("response body did not end")
        .unwrap()
        .to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, session: Option<&Session>) -> TestResponse {
        self.send(request(Method::GET, path, session, None)).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        session: Option<&Session>,
    ) -> TestResponse {
        self.send(request(Method::POST, path, session, Some(body)))
            .await
    }

    pub async fn delete(&self, path: &str, session: Option<&Session>) -> TestResponse {
        self.send(request(Method::DELETE, path, session, None))
            .await
    }

    pub async fn register(&self, username: &str) -> TestResponse {
        let body = serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        self.post_json("/api/v1/auth/register", &body, None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> TestResponse {
        let form = format!("username={username}&password={password}");
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        self.send(req).await
    }

    async fn session_from_login(&self, username: &str) -> Session {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let cookie = response
            .set_cookies()
            .iter()
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        let user = self
            .state
            .store
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap();
        Session {
            username: username.to_owned(),
            user_id: user.user_id,
            cookie,
            csrf: response.json()["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers and logs in a regular user.
    pub async fn user(&self, username: &str) -> Session {
        let response = self.register(username).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        self.session_from_login(username).await
    }

    /// Creates an admin directly in the store and logs in.
    pub async fn admin(&self, username: &str) -> Session {
        self.state
            .store
            .create_user(&NewUser {
                user_id: integr8s_core::new_id(),
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                password_hash: integr8s_api::hash_password(PASSWORD).unwrap(),
                role: Role::Admin,
                is_superuser: true,
            })
            .await
            .unwrap();
        self.session_from_login(username).await
    }

    /// Submits a python script and returns its execution id.
    pub async fn execute(&self, session: &Session, script: &str) -> String {
        let body = serde_json::json!({"script": script, "lang": "python", "lang_version": "3.11"});
        let response = self
            .post_json("/api/v1/execute", &body, Some(session))
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        response.json()["execution_id"].as_str().unwrap().to_owned()
    }
}

/// A request with the session's cookies and CSRF header.
pub fn request(
    method: Method,
    path: &str,
    session: Option<&Session>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(s) = session {
        builder = builder
            .header(header::COOKIE, &s.cookie)
            .header("X-CSRF-Token", &s.csrf);
    }
    match body {
        Some(v) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Asserts a `{"detail", "type"}` domain error.
pub fn assert_domain_error(response: &TestResponse, status: StatusCode, detail: &str, kind: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["detail"], detail, "{body}");
    assert_eq!(body["type"], kind, "{body}");
}

/// Asserts a 422 whose first issue is located at `loc`.
pub fn assert_validation_error(response: &TestResponse, loc: &[&str]) -> Value {
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text()
    );
    let body = response.json();
    let issue = &body["detail"][0];
    let actual: Vec<Value> = issue["loc"].as_array().unwrap().clone();
    let expected: Vec<Value> = loc.iter().map(|s| Value::from(*s)).collect();
    assert_eq!(
        &actual[..expected.len().min(actual.len())],
        &expected[..],
        "{body}"
    );
    assert!(
        issue["msg"].is_string() && issue["type"].is_string(),
        "{body}"
    );
    issue.clone()
}
