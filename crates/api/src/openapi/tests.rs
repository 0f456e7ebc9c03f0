//! The document against the code (every route documented, every entry routed) and against the
//! reference contract (paths, methods and compatible schemas).

mod compat;
mod compat_cases;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body as HttpBody;
use axum::http::{Method, Request};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Store};
use integr8s_core::runtime::RuntimeRegistry;
use tower::ServiceExt;

use super::{document, operations};
use crate::middleware::Unrouted;
use crate::ratelimit::RateLimits;
use crate::state::{ApiConfig, AppState};

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.db");
    let sqlite = integr8s_store::SqliteStore::open(path.to_str().unwrap())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let sqlite = Arc::new(sqlite);
    let store: Arc<dyn Store> = sqlite.clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let settings = integr8s_core::effective_settings::EffectiveSettings::new(
        store.clone(),
        integr8s_core::system_settings::SystemSettings::default(),
    );
    let state = AppState {
        store,
        settings,
        bus: bus.clone(),
        outbox: Outbox::new(events, bus, "openapi-test"),
        kv: Arc::new(integr8s_limiter::MemoryKeyValue::new()),
        registry: Arc::new(RuntimeRegistry::embedded()),
        workers: crate::WorkerView::default(),
        config: Arc::new(ApiConfig {
            secret: b"openapi-test-secret-at-least-32-bytes".to_vec(),
            rate_limit_enabled: false,
            ..ApiConfig::default()
        }),
        started_at: Instant::now(),
        rate_limits: RateLimits::new(Arc::new(integr8s_limiter::MemoryRateLimiter::new())),
        streams: crate::streams::StreamHub::new(Default::default()),
    };
    (crate::router(state), dir)
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "probe-id"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every entry of the table reaches a handler (not the router's 404/405 fallbacks).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (app, _dir) = app().await;
    let mut unrouted = Vec::new();
    for op in operations() {
        let method = Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()).unwrap();
        let req = Request::builder()
            .method(method)
            .uri(concrete(op.path))
            .body(HttpBody::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        if response.extensions().get::<Unrouted>().is_some() {
            unrouted.push(format!("{} {}", op.method.to_uppercase(), op.path));
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:#?}"
    );
}

/// `(method, path)` of every `.route(path, method(..).method(..))` in the crate's sources.
fn declared_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs(&root, &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let call = balanced(rest);
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && call.as_bytes()[i - 1] != b'_'
                });
                if called {
                    routes.insert((method.to_owned(), path.to_owned()));
                }
            }
        }
    }
    routes
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("openapi/tests.rs")
        {
            out.push(path);
        }
    }
}

/// The text up to the parenthesis closing the call whose arguments start `s`.
fn balanced(s: &str) -> &str {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    s
}

/// Every route declared in the code has an entry in the table (and no entry is stale).
#[test]
fn every_route_is_documented() {
    let declared = declared_routes();
    assert!(
        declared.contains(&("post".into(), "/api/v1/execute".into())),
        "route scan is broken"
    );
    let documented: BTreeSet<(String, String)> = operations()
        .iter()
        .map(|op| (op.method.to_owned(), op.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "routes missing from crates/api/src/openapi/operations.rs: {undocumented:#?}\n\
         table entries without a route: {stale:#?}"
    );
}

#[test]
fn document_is_well_formed() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    // Every $ref resolves to a component.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    assert!(doc["paths"]["/api/v1/admin/rate-limits/{user_id}"]["put"]["requestBody"].is_object());
}

#[test]
fn compatible_with_the_reference_contract() {
    let reference = compat::reference().expect(compat::MISSING_REFERENCE);
    let report = compat::compare(&reference, &document());
    eprintln!("{}", report.summary());
    assert!(
        report.incompatible.is_empty(),
        "incompatible schemas:\n{}",
        report.incompatible.join("\n")
    );
}

/// Strict: every reference operation exists with a typed, compatible schema.
#[test]
fn every_reference_operation_is_documented_and_typed() {
    let reference = compat::reference().expect(compat::MISSING_REFERENCE);
    let report = compat::compare(&reference, &document());
    assert!(
        report.missing.is_empty() && report.untyped.is_empty(),
        "{}",
        report.summary()
    );
}
