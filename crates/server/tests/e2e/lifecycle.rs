//! Restarts lose nothing and run nothing twice.

use crate::harness::Server;

#[tokio::test]
async fn queued_executions_survive_a_crash_and_run_exactly_once() {
    let mut s = Server::start(&[
        ("INTEGR8S_EXECUTION__MAX_CONCURRENT", "1"),
        ("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "30"),
    ])
    .await;
    let u = s.user().await;
    let blocker = u.submit("import time\ntime.sleep(20)").await;
    u.wait_for(&blocker, |st| st == "running").await;
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(u.submit(&format!("print('queued {i}')")).await);
    }
    for id in &queued {
        assert_eq!(u.result(id).await["status"], "queued");
    }

    s.crash().await;
    s.restart().await;
    let u = s.user().await;

    // The interrupted run is not silently re-run: it ends as a system error.
    let b = u.wait_terminal(&blocker).await;
    assert_eq!(b["status"], "error", "{b}");
    assert_eq!(b["error_type"], "system_error");

    for (i, id) in queued.iter().enumerate() {
        let r = u.wait_terminal(id).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["stdout"], format!("queued {i}\n"));
        let events = u
            .get(&format!(
                "/api/v1/executions/{id}/events?event_types=execution_started"
            ))
            .await;
        assert_eq!(events.status, 200, "{}", events.body);
        assert_eq!(
            events.body.as_array().map(Vec::len),
            Some(1),
            "ran more than once: {}",
            events.body
        );
    }
}

#[tokio::test]
async fn graceful_restart_keeps_users_and_results() {
    let mut s = Server::start(&[]).await;
    let u = s.new_user("keeper").await;
    let id = u.submit("print('kept')").await;
    u.wait_terminal(&id).await;
    s.restart().await;
    let u = s.login("keeper", "password123").await;
    assert_eq!(u.result(&id).await["stdout"], "kept\n");
}
