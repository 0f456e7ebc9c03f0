//! Event streams under pressure: caps per user and overall (429 in the contract's shape), the
//! notification stream's lifetime and resume with `Last-Event-ID`, an execution stream whose
//! buffer overflows, and events that reach only the database (another process wrote them and
//! its publish never came) still end the stream with the result.

use std::time::Instant;

use integr8s_core::event::{EventMetadata, EventPayload};
use integr8s_core::execution::ExecutionResultRecord;
use integr8s_core::ports::{EventStore, ExecutionStore};
use integr8s_core::{Envelope, ExecutionStatus};
use serde_json::Value;

use crate::harness::{Client, Server, DEADLINE};

/// One SSE frame: its id, event name and data.
#[derive(Debug, Clone)]
struct Frame {
    id: Option<i64>,
    event: Option<String>,
    data: Option<Value>,
    comment: Option<String>,
}

/// An open SSE response read frame by frame.
struct Stream {
    response: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(
        c: &Client,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<Stream, (u16, reqwest::header::HeaderMap, Value)> {
        let mut req = c
            .http
            .get(format!("{}{path}", c.base))
            .header("Cookie", &c.cookie);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = req.send().await.expect("request");
        if response.status() != 200 {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.json().await.unwrap_or(Value::Null);
            return Err((status, headers, body));
        }
        Ok(Stream {
            response,
            buf: String::new(),
        })
    }

    /// The next frame; `None` when the server ended the stream.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\r\n\r\n") {
                let raw: String = self.buf.drain(..end + 4).collect();
                let mut f = Frame {
                    id: None,
                    event: None,
                    data: None,
                    comment: None,
                };
                for line in raw.trim_end().split("\r\n") {
                    if let Some(v) = line.strip_prefix("id: ") {
                        f.id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        f.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        f.data = Some(serde_json::from_str(v).expect("frame json"));
                    } else if let Some(v) = line.strip_prefix(':') {
                        f.comment = Some(v.trim().to_owned());
                    }
                }
                return Some(f);
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("a frame or the end in time")
                .expect("read");
            self.buf.push_str(&String::from_utf8_lossy(&chunk?));
        }
    }

    /// Every data frame up to the end of the stream.
    async fn rest(mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = self.next().await {
            out.push(f);
        }
        out
    }
}

const NOTIFICATIONS: &str = "/api/v1/events/notifications/stream";

#[tokio::test]
async fn streams_are_capped_per_user_and_overall() {
    let s = Server::start(&[
        ("INTEGR8S_STREAMS__MAX_OPEN_PER_USER", "2"),
        ("INTEGR8S_STREAMS__MAX_OPEN", "3"),
    ])
    .await;
    let a = s.new_user("streamer").await;
    let b = s.new_user("watcher").await;
    let a1 = Stream::open(&a, NOTIFICATIONS, None).await.expect("first");
    let _a2 = Stream::open(&a, NOTIFICATIONS, None).await.expect("second");
    let Err((status, headers, body)) = Stream::open(&a, NOTIFICATIONS, None).await else {
        panic!("a third stream of one user was accepted");
    };
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["type"], "TooManyStreamsError", "{body}");
    assert!(body["detail"].is_string());
    assert!(headers.get("retry-after").is_some());
    // The execution stream counts too.
    let id = a.submit("print(1)").await;
    let Err((status, _, _)) =
        Stream::open(&a, &format!("/api/v1/events/executions/{id}"), None).await
    else {
        panic!("an execution stream past the cap was accepted");
    };
    assert_eq!(status, 429);

    let _b1 = Stream::open(&b, NOTIFICATIONS, None)
        .await
        .expect("another user");
    let Err((status, _, body)) = Stream::open(&b, NOTIFICATIONS, None).await else {
        panic!("a stream past the overall cap was accepted");
    };
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["type"], "TooManyStreamsError");

    // Closing one frees its place.
    drop(a1);
    let start = Instant::now();
    loop {
        if Stream::open(&b, NOTIFICATIONS, None).await.is_ok() {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "a closed stream kept its place");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn notifications_of(c: &Client) -> usize {
    c.get("/api/v1/notifications").await.body["notifications"]
        .as_array()
        .map_or(0, Vec::len)
}

async fn run_and_wait_for_notification(c: &Client, expected: usize) {
    c.run("print('notify me')").await;
    let start = Instant::now();
    while notifications_of(c).await < expected {
        assert!(start.elapsed() < DEADLINE, "no notification");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_notification_stream_ends_after_its_lifetime_and_resumes_from_last_event_id() {
    let s = Server::start(&[
        ("INTEGR8S_STREAMS__NOTIFICATION_LIFETIME_SECONDS", "2"),
        ("INTEGR8S_NOTIFICATIONS__THROTTLE_MAX_PER_WINDOW", "0"),
    ])
    .await;
    let u = s.new_user("reconnecting").await;
    run_and_wait_for_notification(&u, 1).await;

    // From the beginning of the log: the first notification, then a clean end.
    let frames = Stream::open(&u, NOTIFICATIONS, Some(0))
        .await
        .expect("stream")
        .rest()
        .await;
    let sent: Vec<&Frame> = frames.iter().filter(|f| f.data.is_some()).collect();
    assert_eq!(sent.len(), 1, "{frames:?}");
    assert_eq!(sent[0].event.as_deref(), Some("notification"));
    let first_id = sent[0].id.expect("frames carry an id");
    assert!(
        frames
            .last()
            .and_then(|f| f.comment.as_deref())
            .is_some_and(|c| c.contains("reconnect")),
        "{frames:?}"
    );

    // The closing frame names where to resume, as browsers do with the last id they got.
    let resume_from = frames.last().and_then(|f| f.id);
    assert_eq!(resume_from, Some(first_id), "{frames:?}");

    // Created while disconnected: the next stream starts with it, and only with it.
    run_and_wait_for_notification(&u, 2).await;
    let frames = Stream::open(&u, NOTIFICATIONS, resume_from)
        .await
        .expect("stream")
        .rest()
        .await;
    let sent: Vec<&Frame> = frames.iter().filter(|f| f.data.is_some()).collect();
    assert_eq!(sent.len(), 1, "{frames:?}");
    assert!(sent[0].id.expect("id") > first_id);
    let listed = u.get("/api/v1/notifications").await.body;
    assert_eq!(
        listed["notifications"][0]["notification_id"],
        sent[0].data.as_ref().unwrap()["notification_id"],
        "the newest notification"
    );
}

fn event_types(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| f.data.as_ref())
        .map(|d| d["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_stream_with_a_full_buffer_catches_up_and_resumes_without_repeats() {
    let s = Server::start(&[("INTEGR8S_STREAMS__BUFFER_FRAMES", "1")]).await;
    let u = s.new_user("slowreader").await;
    let id = u
        .submit("import time\ntime.sleep(0.5)\nprint('all of it')")
        .await;
    let path = format!("/api/v1/events/executions/{id}");
    // Read nothing until the run is over: the one-frame buffers overflow.
    let stream = Stream::open(&u, &path, None).await.expect("stream");
    u.wait_terminal(&id).await;
    let frames = stream.rest().await;
    let got = event_types(&frames);
    assert_eq!(
        got.last().map(String::as_str),
        Some("result_stored"),
        "{got:?}"
    );
    let stored: Vec<String> = u
        .get(&format!("/api/v1/executions/{id}/events?limit=1000"))
        .await
        .body
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
        .filter(|t| {
            integr8s_api::routes::sse::BRIDGED_TYPES
                .iter()
                .any(|b| b.as_str() == t)
        })
        .collect();
    let relayed: Vec<String> = got[1..].to_vec();
    assert_eq!(relayed, stored, "every stored event once, in order");
    let last = frames.last().unwrap();
    assert_eq!(
        last.data.as_ref().unwrap()["result"]["stdout"],
        "all of it\n"
    );

    // Resuming from the id of a middle frame sends only what came after it.
    let with_ids: Vec<&Frame> = frames.iter().filter(|f| f.id.is_some()).collect();
    let middle = with_ids[with_ids.len() / 2];
    let again = Stream::open(&u, &path, middle.id)
        .await
        .expect("stream")
        .rest()
        .await;
    let after_middle: Vec<i64> = with_ids
        .iter()
        .filter_map(|f| f.id)
        .filter(|&seq| seq > middle.id.unwrap())
        .collect();
    assert!(!after_middle.is_empty());
    let resumed: Vec<i64> = again.iter().filter_map(|f| f.id).collect();
    assert_eq!(
        resumed, after_middle,
        "exactly the frames after the middle one: {again:?}"
    );
    assert_eq!(
        event_types(&again).last().map(String::as_str),
        Some("result_stored"),
        "{again:?}"
    );
}

#[tokio::test]
async fn events_written_only_to_the_database_still_end_the_stream() {
    let s = Server::start(&[("INTEGR8S_STREAMS__CATCH_UP_MS", "200")]).await;
    let u = s.new_user("elsewhere").await;
    // A long run of this server; its outcome is written below as another process would.
    let id = u.submit("import time\ntime.sleep(60)").await;
    u.wait_for(&id, |st| st == "running").await;
    let path = format!("/api/v1/events/executions/{id}");
    let mut stream = Stream::open(&u, &path, None).await.expect("stream");
    let first = stream.next().await.expect("status frame");
    assert_eq!(first.data.as_ref().unwrap()["event_type"], "status");

    let store =
        integr8s_store::SqliteStore::open(&s.data_dir.join("integr8s.db").to_string_lossy())
            .await
            .expect("open the server's database");
    let result = ExecutionResultRecord {
        status: ExecutionStatus::Completed,
        stdout: "from another process\n".to_owned(),
        stderr: String::new(),
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        resource_usage: None,
    };
    assert!(store.finish_execution(&id, &result).await.expect("finish"));
    let stored = Envelope::new(
        EventPayload::ResultStored {
            execution_id: id.clone(),
            storage_type: None,
            storage_path: "db".to_owned(),
            size_bytes: 21,
        },
        EventMetadata::new("result-processor", None),
    );
    // Appended, never published.
    store.append_event(&stored).await.expect("append");
    store.close().await;

    let rest = stream.rest().await;
    let last = rest
        .iter()
        .rev()
        .find_map(|f| f.data.as_ref())
        .expect("frames after the status");
    assert_eq!(last["event_type"], "result_stored", "{rest:?}");
    assert_eq!(last["event_id"], stored.event_id.as_str());
    assert_eq!(last["result"]["stdout"], "from another process\n");
    u.post(
        &format!("/api/v1/executions/{id}/cancel"),
        serde_json::json!({}),
    )
    .await;
}
