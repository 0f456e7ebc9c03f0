//! Per-request limits under the admin caps, and standard input, through the API.

use serde_json::json;

use crate::harness::Server;

#[tokio::test]
async fn requested_limits_apply_and_stdin_reaches_the_script() {
    let s = Server::start(&[("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "20")]).await;
    let u = s.user().await;
    let run = |body: serde_json::Value| async {
        let r = u.post("/api/v1/execute", body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = r.body["execution_id"].as_str().unwrap().to_owned();
        u.wait_terminal(&id).await
    };

    let r = run(
        json!({"script": "import sys\nsys.stdout.write(sys.stdin.read()[::-1])", "stdin": "abc"}),
    )
    .await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["stdout"], "cba");

    let r = run(json!({"script": "import time\ntime.sleep(10)", "timeout_seconds": 1})).await;
    assert_eq!(r["status"], "timeout", "{r}");

    let r =
        run(json!({"script": "x = bytearray(200 * 1024 * 1024)\nprint(len(x))", "memory_mb": 64}))
            .await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error_type"], "resource_limit", "{r}");

    let r =
        run(json!({"script": "while True:\n    print('y' * 100)", "max_output_bytes": 4096})).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error_type"], "resource_limit", "{r}");
    assert!(r["stdout"].as_str().unwrap().len() < 8192, "{r}");

    let r = run(json!({"script": "while True:\n    pass", "cpu_time_seconds": 1})).await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error_type"], "resource_limit", "{r}");
}

#[tokio::test]
async fn limits_above_the_cap_or_not_positive_are_422_naming_the_field() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "5"),
        ("INTEGR8S_EXECUTION__MAX_STDIN_BYTES", "10"),
    ])
    .await;
    let u = s.user().await;
    let cases = [
        (
            json!({"script": "print(1)", "timeout_seconds": 6}),
            "timeout_seconds",
        ),
        (
            json!({"script": "print(1)", "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (json!({"script": "print(1)", "memory_mb": -1}), "memory_mb"),
        (
            json!({"script": "print(1)", "memory_mb": 1_000_000}),
            "memory_mb",
        ),
        (
            json!({"script": "print(1)", "max_processes": 100_000}),
            "max_processes",
        ),
        (
            json!({"script": "print(1)", "max_output_bytes": 0}),
            "max_output_bytes",
        ),
        (
            json!({"script": "print(1)", "cpu_time_seconds": 100_000}),
            "cpu_time_seconds",
        ),
        (
            json!({"script": "print(1)", "stdin": "more than ten bytes"}),
            "stdin",
        ),
        (
            json!({"script": "print(1)", "timeout_seconds": "soon"}),
            "timeout_seconds",
        ),
    ];
    for (body, field) in cases {
        let r = u.post("/api/v1/execute", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert!(r.body.to_string().contains(field), "{body}: {}", r.body);
    }
    assert_eq!(u.get("/api/v1/user/executions").await.body["total"], 0);
}
