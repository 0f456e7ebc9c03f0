//! The runner against a real store: bus and file targets, skipped replays, pause, resume and
//! cancel while running.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventMetadata, EventPayload, EventType};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::replay::{
    is_replayed, replay_correlation, ReplayConfig, ReplayFilter, ReplaySession, ReplayStatus,
    ReplayTarget, ReplayType,
};
use integr8s_core::ports::{EventBus, Store};
use tokio_util::sync::CancellationToken;

use super::{ReplayRunner, ReplayRunnerConfig};

const DEADLINE: Duration = Duration::from_secs(30);

struct Env {
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
    runner: tokio::task::JoinHandle<Result<(), crate::EngineError>>,
}

async fn start() -> Env {
    let sqlite = integr8s_store::SqliteStore::open("sqlite::memory:")
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let sqlite = Arc::new(sqlite);
    let store: Arc<dyn Store> = sqlite.clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = Outbox::new(events, bus, "replay-test");
    let dir = tempfile::tempdir().unwrap();
    let mut config = ReplayRunnerConfig::new(dir.path().to_path_buf());
    config.poll = Duration::from_millis(50);
    let shutdown = CancellationToken::new();
    let runner =
        tokio::spawn(ReplayRunner::new(store.clone(), outbox, config).run(shutdown.clone()));
    Env {
        store,
        dir,
        shutdown,
        runner,
    }
}

async fn append(
    env: &Env,
    execution_id: &str,
    at: DateTime<Utc>,
    marker: Option<String>,
) -> Envelope {
    let mut e = Envelope::new(
        EventPayload::ExecutionQueued {
            execution_id: execution_id.to_owned(),
            position_in_queue: None,
            estimated_start_time: None,
        },
        EventMetadata::new("coordinator", None),
    )
    .with_correlation(marker);
    e.timestamp = at;
    env.store.append_event(&e).await.unwrap().envelope
}

fn config(target: ReplayTarget, execution_id: &str, speed: f64) -> ReplayConfig {
    ReplayConfig {
        replay_type: ReplayType::Execution,
        target,
        filter: ReplayFilter {
            execution_id: Some(execution_id.to_owned()),
            ..ReplayFilter::default()
        },
        speed_multiplier: speed,
        preserve_timestamps: false,
        batch_size: 2,
        max_events: None,
        target_topics: None,
        target_file_path: Some("out/run.jsonl".to_owned()),
        skip_errors: true,
        retry_failed: false,
        retry_attempts: 3,
        enable_progress_tracking: true,
    }
}

async fn start_session(env: &Env, config: ReplayConfig) -> String {
    let session = ReplaySession::new(config, None);
    env.store.create_replay_session(&session).await.unwrap();
    let total = env
        .store
        .count_replay_events(&session.config.filter)
        .await
        .unwrap();
    assert!(env
        .store
        .transition_replay_session(
            &session.session_id,
            &[ReplayStatus::Created],
            ReplayStatus::Running,
            Some(total),
            integr8s_core::now()
        )
        .await
        .unwrap());
    session.session_id
}

async fn wait_session(
    env: &Env,
    id: &str,
    what: &str,
    ok: impl Fn(&ReplaySession) -> bool,
) -> ReplaySession {
    let start = tokio::time::Instant::now();
    loop {
        let s = env.store.replay_session(id).await.unwrap().unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop(env: Env) {
    env.shutdown.cancel();
    env.runner.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_target_republishes_marked_copies_and_never_replays_them() {
    let env = start().await;
    let t0 = integr8s_core::now() - chrono::Duration::hours(1);
    let first = append(&env, "e1", t0, None).await;
    let second = append(&env, "e1", t0 + chrono::Duration::seconds(1), None).await;
    append(
        &env,
        "e1",
        t0 + chrono::Duration::seconds(2),
        Some(replay_correlation("old", "x")),
    )
    .await;
    append(&env, "e2", t0, None).await;

    let id = start_session(&env, config(ReplayTarget::Kafka, "e1", 100.0)).await;
    let done = wait_session(&env, &id, "completion", |s| {
        s.status == ReplayStatus::Completed
    })
    .await;
    assert_eq!(
        (
            done.total_events,
            done.replayed_events,
            done.skipped_events,
            done.failed_events
        ),
        (2, 2, 0, 0)
    );
    assert!(done.completed_at.is_some() && done.last_event_at.is_some());

    let copies: Vec<_> = env
        .store
        .events_after(&[EventType::ExecutionQueued], 0, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| {
            e.metadata
                .correlation_id
                .as_deref()
                .is_some_and(|c| c.starts_with(&format!("replay:{id}:")))
        })
        .collect();
    assert_eq!(copies.len(), 2);
    for (copy, original) in copies.iter().zip([&first, &second]) {
        assert!(is_replayed(copy));
        assert_ne!(copy.event_id, original.event_id);
        assert_eq!(copy.payload, original.payload);
        assert_eq!(
            copy.metadata.correlation_id.as_deref(),
            Some(replay_correlation(&id, &original.event_id).as_str())
        );
    }
    stop(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_target_writes_json_lines_in_the_replay_dir() {
    let env = start().await;
    let t0 = integr8s_core::now() - chrono::Duration::hours(1);
    let a = append(&env, "e1", t0, None).await;
    let b = append(&env, "e1", t0 + chrono::Duration::milliseconds(10), None).await;
    let id = start_session(&env, config(ReplayTarget::File, "e1", 10.0)).await;
    wait_session(&env, &id, "completion", |s| {
        s.status == ReplayStatus::Completed
    })
    .await;
    let text = std::fs::read_to_string(env.dir.path().join("out/run.jsonl")).unwrap();
    let lines: Vec<Envelope> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![a, b]);

    let mut bad = config(ReplayTarget::File, "e1", 10.0);
    bad.target_file_path = Some("../escape.jsonl".to_owned());
    let id = start_session(&env, bad).await;
    let failed = wait_session(&env, &id, "failure", |s| s.status == ReplayStatus::Failed).await;
    assert_eq!(failed.errors[0].error_type.as_deref(), Some("invalid_path"));
    assert!(!env
        .dir
        .path()
        .parent()
        .unwrap()
        .join("escape.jsonl")
        .exists());
    stop(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel_take_effect_while_running() {
    let env = start().await;
    let t0 = integr8s_core::now() - chrono::Duration::hours(1);
    // An hour between events at speed 0.1: the runner waits between them until told otherwise.
    append(&env, "e1", t0, None).await;
    append(&env, "e1", t0 + chrono::Duration::hours(1), None).await;
    let id = start_session(&env, config(ReplayTarget::Test, "e1", 0.1)).await;
    wait_session(&env, &id, "the first event", |s| s.replayed_events == 1).await;

    let now = integr8s_core::now();
    let store = &env.store;
    assert!(store
        .transition_replay_session(
            &id,
            &[ReplayStatus::Running],
            ReplayStatus::Paused,
            None,
            now
        )
        .await
        .unwrap());
    // Released: another claim succeeds once resumed, and the position is kept.
    assert!(store
        .transition_replay_session(
            &id,
            &[ReplayStatus::Paused],
            ReplayStatus::Running,
            None,
            now
        )
        .await
        .unwrap());
    let resumed = wait_session(&env, &id, "the resumed run", |s| s.cursor.is_some()).await;
    assert_eq!(resumed.replayed_events, 1);
    assert!(store
        .transition_replay_session(
            &id,
            &[ReplayStatus::Running],
            ReplayStatus::Cancelled,
            None,
            now
        )
        .await
        .unwrap());
    // The runner lets go of the cancelled session: nothing more is replayed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled = store.replay_session(&id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.replayed_events),
        (ReplayStatus::Cancelled, 1)
    );
    stop(env).await;
}
