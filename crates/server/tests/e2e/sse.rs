//! The execution SSE stream: status first, then each event, the result on `result_stored`, and
//! the stream closes — also when the execution had finished before the client connected.

use crate::harness::Server;

#[tokio::test]
async fn stream_from_submit_to_close() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let id = u
        .submit("import time\ntime.sleep(0.3)\nprint('streamed')")
        .await;
    let frames = u.sse(&format!("/api/v1/events/executions/{id}")).await;
    assert!(frames.len() >= 2, "{frames:?}");
    let first = &frames[0];
    assert_eq!(first["event_type"], "status");
    assert_eq!(first["execution_id"], id.as_str());
    assert!(first["event_id"].is_null());
    for key in [
        "event_type",
        "execution_id",
        "timestamp",
        "event_id",
        "status",
        "result",
    ] {
        for f in &frames {
            assert!(f.get(key).is_some(), "frame without {key}: {f}");
        }
    }
    let last = frames.last().unwrap();
    assert_eq!(last["event_type"], "result_stored", "{frames:?}");
    assert_eq!(last["result"]["stdout"], "streamed\n");
    assert_eq!(last["result"]["status"], "completed");
    let types: Vec<_> = frames
        .iter()
        .map(|f| f["event_type"].as_str().unwrap().to_owned())
        .collect();
    if frames[0]["status"] == "queued" {
        assert!(types.contains(&"execution_started".to_owned()), "{types:?}");
        assert!(
            types.contains(&"execution_completed".to_owned()),
            "{types:?}"
        );
    }
}

#[tokio::test]
async fn stream_of_a_finished_execution_sends_the_result_and_closes() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let id = u.submit("print('done already')").await;
    u.wait_terminal(&id).await;
    let frames = u.sse(&format!("/api/v1/events/executions/{id}")).await;
    assert_eq!(frames[0]["event_type"], "status");
    assert_eq!(frames[0]["status"], "completed");
    let last = frames.last().unwrap();
    assert_eq!(last["result"]["stdout"], "done already\n", "{frames:?}");
}

#[tokio::test]
async fn stream_of_someone_elses_execution_is_refused() {
    let s = Server::start(&[]).await;
    let a = s.new_user("sse-a").await;
    let b = s.new_user("sse-b").await;
    let id = a.submit("print(1)").await;
    let r = b.get(&format!("/api/v1/events/executions/{id}")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["type"], "ForbiddenError");
    let r = b
        .get("/api/v1/events/executions/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(r.status, 404);
}
