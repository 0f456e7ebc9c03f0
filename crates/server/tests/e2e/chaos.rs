//! Chaos: the scaled-out system (PostgreSQL, Redis, the broker, and 2 × api, coordinator,
//! saga-orchestrator, local-worker, result-processor, 1 × dlq-processor, each an OS process of
//! the real binary) runs executions of several users submitted through both APIs and followed
//! over SSE on the other API, while a random role process is killed (SIGKILL) every few seconds
//! and started again. Afterwards, from the store: every acknowledged execution ended exactly
//! once with the right output (or as `error` "worker lost" when its worker was killed during
//! the run), none ran twice, no queue slot or allocation is left, every stream ended with the
//! result, and the dead-letter queue holds nothing.
//!
//! Sandbox uids 560_000–560_999 belong to the tests of this file (no other test uses them).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::StreamExt;
use integr8s_core::event::EventType;
use integr8s_core::execution::ExecutionFilter;
use integr8s_core::ports::dlq::DlqFilter;
use integr8s_core::ExecutionStatus;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::deployment::Deployment;
use crate::harness::{Client, DEADLINE};

/// First sandbox uid of the workers of this file's tests; each worker takes 64 from there.
pub const UID_BASE: u32 = 560_000;

const EXECUTIONS: usize = 200;
const USERS: usize = 4;
/// Time between two submissions: spreads the work over the chaos.
const SUBMIT_EVERY: Duration = Duration::from_millis(150);
/// Time between two kills.
const KILL_EVERY: Duration = Duration::from_secs(2);
/// How long a killed process stays down before it is started again.
const DOWN_FOR: Duration = Duration::from_millis(300);
/// Bound on one execution's stream, kills included; a hang fails instead of blocking CI.
const FOLLOW_DEADLINE: Duration = Duration::from_secs(240);

/// Settings of the chaos deployment: short worker leases, so that a killed worker's runs are
/// settled within a second or two, and room for every stream of a user at once.
pub const CHAOS_ENV: [(&str, &str); 4] = [
    ("INTEGR8S_WORKER__HEARTBEAT_MS", "250"),
    ("INTEGR8S_WORKER__LEASE_MS", "1000"),
    ("INTEGR8S_STREAMS__MAX_OPEN_PER_USER", "100"),
    ("INTEGR8S_STREAMS__CATCH_UP_MS", "500"),
];

/// The API processes' current URLs (`api-1`, `api-2`); a restarted one listens on a new port.
type ApiUrls = Arc<RwLock<[String; 2]>>;

fn api_url(apis: &ApiUrls, i: usize) -> String {
    apis.read().unwrap_or_else(|e| e.into_inner())[i].clone()
}

/// What the client saw of one execution.
struct Followed {
    index: usize,
    id: String,
    /// The `data:` payloads, across reconnects.
    frames: Vec<Value>,
    /// The stream ended with the pipeline's last event (see [`is_final`]).
    ended_with_result: bool,
    reconnects: u32,
    /// Streams closed by the server (not cut) before the result: which API, and the last
    /// frame before the close.
    closed_early: Vec<String>,
}

fn script(i: usize) -> String {
    if i.is_multiple_of(5) {
        format!("import time\ntime.sleep(0.5)\nprint({i} * 7)")
    } else {
        format!("print({i} * 7)")
    }
}

fn expected_stdout(i: usize) -> String {
    format!("{}\n", i * 7)
}

/// Submits through API `via` with an idempotency key; an API that does not answer is replaced
/// by the other, with the same key. Returns the execution id and the API that acknowledged it.
async fn submit(
    http: &reqwest::Client,
    apis: &ApiUrls,
    user: &Client,
    via: usize,
    index: usize,
) -> (String, usize) {
    let key = format!("chaos-{index}");
    let start = Instant::now();
    let mut api = via;
    loop {
        let base = api_url(apis, api);
        let sent = http
            .post(format!("{base}/api/v1/execute"))
            .header("Cookie", &user.cookie)
            .header("X-CSRF-Token", &user.csrf)
            .header("Idempotency-Key", &key)
            .json(&json!({"script": script(index), "lang": "python", "lang_version": "3.11"}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                let body: Value = r.json().await.expect("execute body");
                let id = body["execution_id"].as_str().expect("execution_id");
                return (id.to_owned(), api);
            }
            // The process is going down or its dependency is: another try.
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => {
                let status = r.status();
                panic!(
                    "execute {index}: {status} {}",
                    r.text().await.unwrap_or_default()
                );
            }
            Err(_) => {}
        }
        assert!(
            start.elapsed() < DEADLINE,
            "execution {index} never accepted"
        );
        api = 1 - api;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One SSE frame: its `id:` and parsed `data:`.
fn parse_frame(frame: &str) -> (Option<String>, Option<Value>) {
    let mut id = None;
    let mut data = None;
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).expect("frame json"));
        }
    }
    (id, data)
}

/// The frames after which the server ends an execution's stream (the contract's: the stored
/// result, or the event that ended a run without one).
fn is_final(frame: &Value) -> bool {
    matches!(
        frame["event_type"].as_str(),
        Some(
            "result_stored"
                | "result_failed"
                | "execution_failed"
                | "execution_timeout"
                | "execution_cancelled"
        )
    )
}

/// Follows an execution's stream on API `first`; when the stream is cut, goes on on the other
/// API with `Last-Event-ID`, until the pipeline's last event.
async fn follow(
    http: &reqwest::Client,
    apis: &ApiUrls,
    user: &Client,
    index: usize,
    id: String,
    first: usize,
) -> Followed {
    let mut out = Followed {
        index,
        id,
        frames: Vec::new(),
        ended_with_result: false,
        reconnects: 0,
        closed_early: Vec::new(),
    };
    let start = Instant::now();
    let mut api = first;
    let mut last_id: Option<String> = None;
    while start.elapsed() < FOLLOW_DEADLINE {
        let base = api_url(apis, api);
        let mut req = http
            .get(format!("{base}/api/v1/events/executions/{}", out.id))
            .header("Cookie", &user.cookie);
        if let Some(last) = &last_id {
            req = req.header("Last-Event-ID", last);
        }
        if let Ok(r) = req.send().await {
            let status = r.status();
            assert!(
                status == 200 || status == 429 || status.is_server_error(),
                "stream of {}: {status}",
                out.id
            );
            let mut body = r.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let left = FOLLOW_DEADLINE.saturating_sub(start.elapsed());
                match tokio::time::timeout(left, body.next()).await {
                    Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
                    Ok(None) if status == 200 => {
                        let last = out.frames.last().map(|f| f["event_type"].clone());
                        out.closed_early
                            .push(format!("api-{} at {base}, after {last:?}", api + 1));
                        break;
                    }
                    Ok(_) | Err(_) => break,
                }
                while let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let frame: Vec<u8> = buf.drain(..pos + 4).collect();
                    let (frame_id, data) = parse_frame(&String::from_utf8_lossy(&frame));
                    if frame_id.is_some() {
                        last_id = frame_id;
                    }
                    if let Some(data) = data {
                        let done = is_final(&data);
                        out.frames.push(data);
                        if done {
                            out.ended_with_result = true;
                            return out;
                        }
                    }
                }
            }
        }
        out.reconnects += 1;
        api = 1 - api;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}

/// A small deterministic generator, seeded from the clock (printed, to replay a run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Kills a random process every [`KILL_EVERY`] and starts it again, until `stop`; returns the
/// deployment and the names killed, in order.
async fn chaos_loop(
    mut d: Deployment,
    apis: ApiUrls,
    seed: u64,
    stop: CancellationToken,
) -> (Deployment, Vec<String>) {
    let mut rng = Lcg(seed);
    let mut killed = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return (d, killed),
            () = tokio::time::sleep(KILL_EVERY) => {}
        }
        let names = d.names();
        let name = names[rng.next(names.len())].clone();
        d.kill(&name).await;
        tokio::time::sleep(DOWN_FOR).await;
        d.restart(&name).await;
        if let Some(n) = name.strip_prefix("api-") {
            let i: usize = n.parse::<usize>().expect("api number") - 1;
            apis.write().unwrap_or_else(|e| e.into_inner())[i] = d.api(&name).to_owned();
        }
        killed.push(name);
    }
}

/// The pipeline of the chaos test: two processes of each role, one DLQ processor.
pub async fn start_pipeline(d: &mut Deployment) {
    for role in [
        "api",
        "coordinator",
        "saga-orchestrator",
        "result-processor",
        "dlq-processor",
    ] {
        d.start(role).await;
        if role != "dlq-processor" {
            d.start(role).await;
        }
    }
    d.start_with("local-worker", Some(UID_BASE), &[]).await;
    d.start_with("local-worker", Some(UID_BASE + 64), &[]).await;
    for name in d.names() {
        d.wait_ready(&name).await;
    }
}

/// Registers `name` through `base` and logs it in.
pub async fn new_user(base: &str, name: &str) -> Client {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 200, "register {name}");
    Client::login(base, name, "password123")
        .await
        .expect("login")
}

#[tokio::test]
async fn killing_random_role_processes_loses_nothing_and_runs_nothing_twice() {
    let began = Instant::now();
    let mut d = Deployment::with_env(&CHAOS_ENV).await;
    start_pipeline(&mut d).await;
    let apis: ApiUrls = Arc::new(RwLock::new([
        d.api("api-1").to_owned(),
        d.api("api-2").to_owned(),
    ]));
    let mut users = Vec::new();
    for u in 0..USERS {
        users.push(Arc::new(
            new_user(&api_url(&apis, 0), &format!("chaos{u}")).await,
        ));
    }
    let store = integr8s_store::open(d.database_url())
        .await
        .expect("open the store");

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_nanos() as u64)
        .unwrap_or(1);
    println!("chaos seed {seed}");
    let stop = CancellationToken::new();
    let chaos = tokio::spawn(chaos_loop(d, apis.clone(), seed, stop.clone()));

    // Each execution: submitted through one API, followed on the other.
    let http = reqwest::Client::new();
    let mut runs = Vec::new();
    for i in 0..EXECUTIONS {
        let (http, apis, user) = (http.clone(), apis.clone(), users[i % USERS].clone());
        runs.push(tokio::spawn(async move {
            let (id, via) = submit(&http, &apis, &user, i % 2, i).await;
            follow(&http, &apis, &user, i, id, 1 - via).await
        }));
        tokio::time::sleep(SUBMIT_EVERY).await;
    }
    let followed: Vec<Followed> = join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("a client task"))
        .collect();
    stop.cancel();
    let (mut d, killed) = chaos.await.expect("the chaos loop");
    let chaos_time = began.elapsed();

    // What the store says, once every process is up and the settlement had time to run.
    for name in d.names() {
        d.wait_ready(&name).await;
    }
    let terminal = [
        EventType::ExecutionCompleted,
        EventType::ExecutionFailed,
        EventType::ExecutionTimeout,
        EventType::ExecutionCancelled,
    ];
    let (mut completed, mut worker_lost, mut wrong, mut lost, mut duplicated) =
        (0, 0, Vec::new(), Vec::new(), Vec::new());
    let (mut not_ended, mut reconnects, mut closed_early) = (Vec::new(), 0, Vec::new());
    for f in &followed {
        reconnects += f.reconnects;
        for close in &f.closed_early {
            closed_early.push(format!("{} {}: {close}", f.index, f.id));
        }
        if !f.ended_with_result {
            not_ended.push(format!("{} {}: {:?}", f.index, f.id, f.frames));
        }
        let start = Instant::now();
        let execution = loop {
            let e = store
                .execution(&f.id)
                .await
                .expect("read")
                .expect("acknowledged execution stored");
            if e.status.is_terminal() || start.elapsed() > DEADLINE {
                break e;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let events = store
            .events_for_aggregate(&f.id, &[], 1000)
            .await
            .expect("events");
        let count = |t: EventType| {
            events
                .iter()
                .filter(|e| e.envelope.event_type() == t)
                .count()
        };
        let starts = count(EventType::ExecutionStarted);
        let ends: usize = terminal.iter().map(|t| count(*t)).sum();
        let results = count(EventType::ResultStored) + count(EventType::ResultFailed);
        if starts > 1 || ends > 1 || results > 1 {
            duplicated.push(format!(
                "{} {}: {starts} starts, {ends} ends, {results} results",
                f.index, f.id
            ));
        }
        let message = execution.error_message.clone().unwrap_or_default();
        match execution.status {
            ExecutionStatus::Completed
                if execution.stdout.as_deref() == Some(expected_stdout(f.index).as_str())
                    && starts == 1
                    && ends == 1 =>
            {
                completed += 1;
            }
            ExecutionStatus::Error if message.contains("worker lost") && ends == 1 => {
                worker_lost += 1;
            }
            s if !s.is_terminal() => lost.push(format!("{} {}: {s:?}", f.index, f.id)),
            s => wrong.push(format!(
                "{} {}: {s:?} stdout {:?} message {message:?}, {starts} starts, {ends} ends",
                f.index, f.id, execution.stdout
            )),
        }
        // The stream ended with the execution's end: the stored result where it completed.
        if let Some(last) = f.frames.last().filter(|_| f.ended_with_result) {
            let fits = match last["event_type"].as_str() {
                Some("result_stored") => {
                    last["result"]["status"] == json!(execution.status.as_str())
                        && (execution.status != ExecutionStatus::Completed
                            || last["result"]["stdout"] == json!(expected_stdout(f.index)))
                }
                Some("execution_failed") => execution.status == ExecutionStatus::Error,
                _ => false,
            };
            if !fits {
                wrong.push(format!("{} {}: stream ended with {last}", f.index, f.id));
            }
        }
    }

    // Nothing of anyone is left unfinished, acknowledged or not (a retried submission is one
    // execution through its idempotency key).
    let mut unfinished = Vec::new();
    let mut stored_executions = 0;
    for u in 0..USERS {
        let user = store
            .user_by_username(&format!("chaos{u}"))
            .await
            .expect("read")
            .expect("user");
        let filter = ExecutionFilter {
            user_id: Some(user.user_id),
            limit: 1000,
            ..ExecutionFilter::default()
        };
        let (executions, _) = store.list_executions(&filter).await.expect("list");
        stored_executions += executions.len();
        for e in executions.iter().filter(|e| !e.status.is_terminal()) {
            unfinished.push(format!("{} {:?}", e.execution_id, e.status));
        }
    }

    // Every slot and allocation is back.
    let start = Instant::now();
    let (queued, active, allocations) = loop {
        let (queued, active) = store.queue_counts().await.expect("queue counts");
        let allocations = store
            .active_allocations("python")
            .await
            .expect("allocations");
        if (queued, active, allocations) == (0, 0, 0) || start.elapsed() > DEADLINE {
            break (queued, active, allocations);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (dlq, _) = store
        .list_dlq_messages(&DlqFilter {
            limit: 1000,
            ..DlqFilter::default()
        })
        .await
        .expect("dlq");
    let dead: Vec<String> = dlq
        .iter()
        .map(|m| {
            format!(
                "{} {} {:?} ({}): {}",
                m.group,
                m.original_topic,
                m.status,
                m.event.envelope.aggregate_id.as_deref().unwrap_or_default(),
                m.error
            )
        })
        .collect();

    let mut by_role: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &killed {
        *by_role
            .entry(name.rsplit_once('-').map_or(name.as_str(), |(r, _)| r))
            .or_default() += 1;
    }
    println!(
        "chaos: {EXECUTIONS} executions of {USERS} users ({stored_executions} stored), \
         {completed} completed, {worker_lost} worker lost, {} lost, {} duplicated, {} wrong; \
         {} kills survived {by_role:?}; {reconnects} stream reconnects ({} closed \
         by the server early), {} streams without the result; queue {queued}/{active}, \
         allocations {allocations}, dlq {}; {:.1} s",
        lost.len(),
        duplicated.len(),
        wrong.len(),
        killed.len(),
        closed_early.len(),
        not_ended.len(),
        dlq.len(),
        chaos_time.as_secs_f64()
    );
    assert!(lost.is_empty(), "executions lost: {lost:#?}");
    assert!(
        duplicated.is_empty(),
        "executions run twice: {duplicated:#?}"
    );
    assert!(wrong.is_empty(), "wrong outcomes: {wrong:#?}");
    assert!(
        not_ended.is_empty(),
        "streams without the result: {not_ended:#?}"
    );
    assert!(
        closed_early.is_empty(),
        "streams the server ended before the execution did: {closed_early:#?}"
    );
    assert!(
        unfinished.is_empty(),
        "executions left unfinished: {unfinished:#?}"
    );
    assert_eq!(
        stored_executions, EXECUTIONS,
        "one execution per submission"
    );
    assert_eq!((queued, active, allocations), (0, 0, 0), "slots leaked");
    assert!(dead.is_empty(), "dead letters: {dead:#?}");
    assert_eq!(completed + worker_lost, EXECUTIONS);
    assert!(killed.len() >= 10, "too few kills: {killed:?}");

    for name in d.names() {
        let status = d.stop(&name).await;
        assert!(status.success(), "{name} ended with {status}");
    }
}
