//! `integr8s load`, the real binary as a subprocess, against a real server (and, to prove the
//! monkey reports what breaks the contract, against a stand-in that answers 500 on one route).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::harness::{Server, BIN, DEADLINE};

/// Runs `integr8s load` to its end; returns the parsed report and the output directory.
async fn load(base: &str, args: &[&str]) -> (Value, tempfile::TempDir) {
    let out = tempfile::tempdir().expect("output dir");
    let run = Command::new(BIN)
        .args(["load", "--base-url", base, "--quiet", "--output"])
        .arg(out.path())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output();
    let run = tokio::time::timeout(DEADLINE * 2, run)
        .await
        .expect("load ends")
        .expect("spawn load");
    assert!(
        run.status.success(),
        "load failed: {}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("report: "), "{stdout}");
    (report(out.path()), out)
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read output dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn report(dir: &Path) -> Value {
    let reports = files(dir, ".json");
    assert_eq!(reports.len(), 1, "{reports:?}");
    serde_json::from_slice(&std::fs::read(&reports[0]).expect("read report")).expect("report json")
}

fn endpoint<'a>(report: &'a Value, method: &str, path: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["method"] == method && e["path"] == path)
        .unwrap_or_else(|| panic!("no {method} {path} in {}", report["endpoints"]))
}

/// A well-formed SVG document: one `<svg>` root, every element closed in order.
fn assert_valid_svg(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read svg");
    let body = text.trim_start();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .expect("xml declaration ends")
            .1
            .trim_start(),
        None => body,
    };
    assert!(body.starts_with("<svg"), "{}", &body[..body.len().min(80)]);
    assert!(body.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("tag ends") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "{}",
                path.display()
            );
        } else if !tag.starts_with('!') && !tag.starts_with('?') {
            let name = tag
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches('/');
            if open.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                open.push(name.to_owned());
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed {open:?} in {}", path.display());
    assert_eq!(roots, 1, "{}", path.display());
    assert!(text.contains("<polyline") || text.contains("<rect"));
}

#[tokio::test]
async fn user_mode_checks_every_flow_and_reports_figures() {
    let s = Server::start(&[]).await;
    let (r, out) = load(
        &s.base,
        &[
            "--mode",
            "user",
            "--users",
            "3",
            "--duration",
            "8s",
            "--plots",
        ],
    )
    .await;
    assert_eq!(r["mode"], "user");
    assert_eq!(r["stopped_by"], "duration");
    assert_eq!(r["users"]["signed_in"], 3);
    for (method, path) in [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/execute"),
        ("GET", "/api/v1/executions/{execution_id}/events"),
    ] {
        let e = endpoint(&r, method, path);
        assert!(e["count"].as_u64().unwrap() > 0, "{e}");
        for key in ["min", "p50", "p90", "p99", "max"] {
            assert!(e["latency_ms"][key].is_number(), "{e}");
        }
    }
    assert_eq!(endpoint(&r, "POST", "/api/v1/auth/register")["count"], 3);
    // Against a correct server nothing the flows check is wrong.
    assert_eq!(r["totals"]["errors"], 0, "{}", r["endpoints"]);
    assert!(r["totals"]["requests"].as_u64().unwrap() > 0);
    let e = &r["executions"];
    assert!(e["submitted"].as_u64().unwrap() > 0, "{e}");
    assert!(
        e["finished_by_status"]["completed"].as_u64().unwrap() > 0,
        "{e}"
    );
    assert_eq!(e["wrong_results"], 0, "{e}");
    assert!(e["end_to_end_ms"]["p50"].as_f64().unwrap() > 0.0, "{e}");
    assert!(e["queue_wait_samples"].as_u64().unwrap() > 0, "{e}");
    let timeline = r["timeline"].as_array().expect("timeline");
    assert!(timeline.len() >= 8, "{timeline:?}");
    let per_second: u64 = timeline
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, r["totals"]["requests"].as_u64().unwrap());
    let charts = files(out.path(), ".svg");
    assert_eq!(charts.len(), 2, "{charts:?}");
    for chart in &charts {
        assert_valid_svg(chart);
    }
}

#[tokio::test]
async fn monkey_mode_finds_nothing_on_a_correct_server() {
    let s = Server::start(&[]).await;
    let (r, _out) = load(
        &s.base,
        &["--mode", "monkey", "--users", "3", "--duration", "6s"],
    )
    .await;
    assert_eq!(r["findings"]["total"], 0, "{}", r["findings"]);
    assert_eq!(r["totals"]["errors"], 0);
    // How many requests fit in the run depends on the machine; that they spread over
    // several routes and statuses does not.
    assert!(r["totals"]["requests"].as_u64().unwrap() > 0);
    let endpoints = r["endpoints"].as_array().expect("endpoints");
    assert!(endpoints.len() >= 3, "{}", endpoints.len());
    // Random requests get the contract's errors: several kinds of 4xx.
    let statuses = r["totals"]["statuses"].as_object().expect("statuses");
    let client_errors = statuses.keys().filter(|k| k.starts_with('4')).count();
    assert!(client_errors >= 3, "{statuses:?}");
}

/// A stand-in deployment: sign-up and login as the contract has them, 404 in the contract's
/// shape everywhere else, and a broken route that answers 500.
async fn stand_in(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let json_ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    match path.as_str() {
        "/api/v1/k8s-limits" => json_ok(json!({"execution_timeout": 5, "supported_runtimes": {}})),
        "/api/v1/auth/register" => {
            let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            json_ok(json!({"username": body["username"], "user_id": "u-1"}))
        }
        "/api/v1/auth/login" => {
            let mut r = json_ok(json!({"message": "Login successful", "csrf_token": "t.1"}));
            r.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_static("access_token=a; Path=/; HttpOnly"),
            );
            r
        }
        p if p.starts_with("/api/v1/scripts") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"detail": "Internal Server Error"})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Not Found"})),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn monkey_reports_a_server_error_with_the_request_behind_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(stand_in);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (r, _out) = load(
        &base,
        &["--mode", "monkey", "--users", "2", "--duration", "4s"],
    )
    .await;
    server.abort();
    let findings = &r["findings"];
    let total = findings["total"].as_u64().unwrap();
    assert!(total > 0, "{findings}");
    assert_eq!(
        findings["by_reason"]["server error 500"], total,
        "{findings}"
    );
    for f in findings["findings"].as_array().unwrap() {
        assert!(
            f["path"].as_str().unwrap().starts_with("/api/v1/scripts"),
            "{f}"
        );
        assert_eq!(f["status"], 500, "{f}");
        assert_eq!(f["reason"], "server error 500", "{f}");
        assert!(f["method"].is_string() && f["request_headers"]["cookie"].is_string());
        let body = f["response_body"].as_str().unwrap();
        assert!(
            f["method"] == "HEAD" || body.contains("Internal Server Error"),
            "{f}"
        );
    }
    // Only that route broke: every other answer was a well-formed 404, and each finding is
    // counted once as an error.
    assert_eq!(r["totals"]["errors"], total, "{}", r["totals"]);
}

#[tokio::test]
async fn interrupt_ends_the_run_with_the_report_so_far() {
    let s = Server::start(&[]).await;
    let out = tempfile::tempdir().expect("output dir");
    let mut child = Command::new(BIN)
        .args(["load", "--base-url", &s.base, "--quiet", "--mode", "both"])
        .args(["--users", "2", "--duration", "10m", "--output"])
        .arg(out.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn load");
    // Let it sign in and send some requests; the amount does not matter.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("load stops after SIGINT")
        .expect("wait");
    assert!(status.success(), "{status}");
    let r = report(out.path());
    assert_eq!(r["stopped_by"], "interrupt");
    assert!(r["elapsed_s"].as_f64().unwrap() < 600.0);
    assert!(r["totals"]["requests"].as_u64().unwrap() > 0);
    assert_eq!(r["users"]["user"], 1);
    assert_eq!(r["users"]["monkey"], 1);
}
