//! Scripts run end to end through the API and the real sandbox.

use serde_json::json;

use crate::harness::{script_processes, Server};

#[tokio::test]
async fn python_stdout_exit_codes_and_syntax_errors() {
    let s = Server::start(&[]).await;
    let u = s.user().await;

    let r = u.run("print('hello from integr8s')").await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["stdout"], "hello from integr8s\n");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["lang"], "python");
    let usage = &r["resource_usage"];
    assert!(
        usage["execution_time_wall_seconds"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert_eq!(usage["clk_tck_hertz"], 100);
    assert!(usage["peak_memory_kb"].as_i64().unwrap() > 0, "{r}");

    let r = u
        .run("import sys\nprint('bye', file=sys.stderr)\nsys.exit(3)")
        .await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["stderr"], "bye\n");

    let r = u.run("def broken(:\n  pass").await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["exit_code"], 1);
    assert!(r["stderr"].as_str().unwrap().contains("SyntaxError"), "{r}");
}

#[tokio::test]
async fn timeout_ends_the_run_as_timeout() {
    let s = Server::start(&[("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "1")]).await;
    let u = s.user().await;
    let r = u
        .run("import time\nprint('start', flush=True)\ntime.sleep(30)")
        .await;
    assert_eq!(r["status"], "timeout", "{r}");
    assert_eq!(r["error_type"], "timeout");
    assert!(
        script_processes(s.pid()).is_empty(),
        "processes left: {:?}",
        script_processes(s.pid())
    );
}

#[tokio::test]
async fn cancel_stops_a_running_script_and_leaves_no_process() {
    let s = Server::start(&[("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "60")]).await;
    let u = s.user().await;
    let id = u
        .submit("import time\nprint('sleeping', flush=True)\ntime.sleep(50)")
        .await;
    u.wait_for(&id, |st| st == "running").await;
    // `running` is recorded as the sandbox starts; wait until the script itself is up.
    let started = std::time::Instant::now();
    while script_processes(s.pid()).is_empty() {
        assert!(
            started.elapsed() < crate::harness::DEADLINE,
            "the script never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = u
        .post(
            &format!("/api/v1/executions/{id}/cancel"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancellation_requested");
    let done = u.wait_terminal(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        script_processes(s.pid()).is_empty(),
        "processes left: {:?}",
        script_processes(s.pid())
    );

    let again = u
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "already_cancelled");
}

#[tokio::test]
async fn idempotency_key_returns_the_same_execution() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let body = json!({"script": "print(42)", "lang": "python", "lang_version": "3.11"});
    let send = || {
        u.send(
            u.http
                .post(format!("{}/api/v1/execute", s.base))
                .header("X-CSRF-Token", &u.csrf)
                .header("Idempotency-Key", "retry-me-1")
                .json(&body),
        )
    };
    let a = send().await;
    let b = send().await;
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    assert_eq!(a.body["execution_id"], b.body["execution_id"]);
    let list = u.get("/api/v1/user/executions").await;
    assert_eq!(list.body["total"], 1, "{}", list.body);
}

#[tokio::test]
async fn results_are_private_to_their_owner_and_admins() {
    let s = Server::start(&[]).await;
    let alice = s.new_user("alice").await;
    let bob = s.new_user("bob").await;
    let id = alice.submit("print('secret')").await;
    alice.wait_terminal(&id).await;
    let r = bob.get(&format!("/api/v1/executions/{id}/result")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!({"detail": "Access denied", "type": "ForbiddenError"})
    );
    let admin = s.admin().await;
    assert_eq!(
        admin
            .get(&format!("/api/v1/executions/{id}/result"))
            .await
            .status,
        200
    );
    assert_eq!(bob.get("/api/v1/user/executions").await.body["total"], 0);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let s = Server::start(&[
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
        ("INTEGR8S_EXECUTION__MAX_QUEUE_LENGTH", "2"),
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "30"),
    ])
    .await;
    let u = s.user().await;
    let mut accepted = Vec::new();
    let mut rejected = None;
    for _ in 0..6 {
        let r = u
            .post(
                "/api/v1/execute",
                json!({"script": "import time\ntime.sleep(20)"}),
            )
            .await;
        if r.status == 429 {
            rejected = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        accepted.push(r.body["execution_id"].as_str().unwrap().to_owned());
    }
    let r = rejected.expect("the queue never filled");
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body["detail"].is_string(), "{}", r.body);
    assert!(
        accepted.len() <= 3,
        "accepted {} with 1 slot and a queue of 2",
        accepted.len()
    );
    for id in &accepted {
        u.post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
            .await;
    }
}
