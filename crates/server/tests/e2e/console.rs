//! The web console: its page and assets over HTTP (policy, caching, versioned paths), and the
//! whole console driven in Debian's chromium by `tests/browser/console.mjs` (playwright-core).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use tokio::process::Command;

use crate::harness::Server;

/// Bounds the whole browser run so a hang fails the test; never a performance threshold.
const BROWSER_DEADLINE: Duration = Duration::from_secs(900);

fn browser_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the browser test writes a screenshot of each main page (git-ignored, under `target/`).
fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

/// The asset paths the page names (`/console/{version}/...`).
fn asset_paths(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|part| part.starts_with("/console/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_page_and_its_assets_carry_a_strict_policy_and_cache_headers() {
    let server = Server::start(&[]).await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers()[CACHE_CONTROL], "no-cache");
    assert!(page.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    let assets = asset_paths(&html);
    for file in ["/app.css", "/js/main.js", "/js/pages/run.js"] {
        assert!(assets.iter().any(|a| a.ends_with(file)), "{file}: {html}");
    }

    for path in &assets {
        let r = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap(), csp);
    }
    // A module the entry imports is served under the same version.
    let version = assets[0].split('/').nth(2).unwrap();
    let module = http
        .get(format!("{}/console/{version}/js/api.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(module.status(), 200);
    assert!(module.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    // Another version (an older binary's) or an unknown file is not found, in the API's shape.
    for path in [
        "/console/000000000000/app.css",
        &format!("/console/{version}/nope.js"),
    ] {
        let r = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "Not Found");
    }

    // The API keeps its own paths and its own policy.
    let live = http
        .get(format!("{}/api/v1/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(
        live.headers()[CONTENT_SECURITY_POLICY],
        "default-src 'self'; frame-ancestors 'none'"
    );
}

/// Kills the browser test's whole process group (node and the chromium it started) when
/// dropped, so a failing or hanging run leaves nothing behind.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let dir = browser_tests_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/install-browser.sh"
    );
    // Under the default rate limits, as a person would use it (the test ends by running past the
    // submission limit). Every run notifies; the test counts on each notification reaching the
    // inbox, so the notification throttle is off.
    let server = Server::start(&[
        ("INTEGR8S_RATE_LIMIT__ENABLED", "true"),
        ("INTEGR8S_NOTIFICATIONS__THROTTLE_MAX_PER_WINDOW", "0"),
    ])
    .await;
    let mut child = Command::new("node")
        .arg("console.mjs")
        .arg(&server.base)
        .arg(screenshot_dir())
        .current_dir(&dir)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let _group = ProcessGroup(child.id().expect("node pid"));
    let status = tokio::time::timeout(BROWSER_DEADLINE, child.wait())
        .await
        .expect("the browser test finished")
        .expect("node ran");
    assert!(
        status.success(),
        "the browser test failed ({status}); its output above names the step"
    );
}
