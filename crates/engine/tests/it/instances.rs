//! Several workers and coordinators over one store and one bus, as separate processes would
//! run them: cancels reach the owner of a run, runs of a lost worker are settled once, a
//! redelivered command never runs twice, and the queue's caps hold across coordinators.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use integr8s_core::cancel::CancelOutcome;
use integr8s_core::event::{Envelope, EventPayload, EventType};
use integr8s_core::execution::{ErrorType, ExecutionStatus, Priority};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Executor, Store};
use integr8s_engine::WorkerConfig;

use crate::harness::{all_runtimes, config, eventually, worker, Pipeline};
use crate::scripted::ScriptedExecutor;

/// A worker whose process is "killed": it runs on a runtime of its own, shut down abruptly, so
/// its tasks (runs, heartbeat) stop at once and its lease is never given up.
struct Doomed {
    runtime: tokio::runtime::Runtime,
}

impl Doomed {
    fn start(p: &Pipeline, worker: WorkerConfig, executor: Arc<dyn Executor>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let w = p.worker(worker, executor);
        runtime.spawn(w.run(tokio_util::sync::CancellationToken::new()));
        Self { runtime }
    }

    fn kill(self) {
        self.runtime.shutdown_background();
    }
}

/// A lease short enough for a test that waits for one to expire.
fn short_lease(id: &str) -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_millis(1500),
        ..worker(id)
    }
}

#[tokio::test]
async fn a_cancel_reaches_the_worker_that_runs_the_execution() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(4, 4), all_runtimes()).await;
    let on_a = Arc::new(ScriptedExecutor::new());
    let on_b = Arc::new(ScriptedExecutor::new());
    p.add_worker(worker("worker-a"), on_a.clone());

    let first = p.submit("alice", "block", Priority::Normal).await;
    eventually("the run on worker a", || async {
        on_a.live().contains(&first).then_some(())
    })
    .await;
    // Worker b joins the group; the cancel must still reach worker a.
    p.add_worker(worker("worker-b"), on_b.clone());
    let requested = p.cancel(&first, "alice").await;
    assert!(
        matches!(requested, CancelOutcome::Stopping { .. }),
        "{requested:?}"
    );
    let e = p.finished(&first).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert!(on_a.live().is_empty());

    // A cancel whose live fan-out never came (stored, not published) is found in the store.
    let second = p.submit("alice", "block", Priority::Normal).await;
    let runner = eventually("the second run", || async {
        if on_a.live().contains(&second) {
            Some(on_a.clone())
        } else if on_b.live().contains(&second) {
            Some(on_b.clone())
        } else {
            None
        }
    })
    .await;
    let command = EventPayload::DeletePodCommand {
        saga_id: String::new(),
        execution_id: second.clone(),
        reason: "user requested cancellation".to_owned(),
        pod_name: None,
        namespace: None,
    };
    let env = Envelope::new(command, p.outbox.metadata(Some("alice".to_owned())));
    p.store.append_event(&env).await.unwrap();
    let e = p.finished(&second).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert!(runner.live().is_empty());
    for id in [&first, &second] {
        assert_eq!(on_a.runs(id) + on_b.runs(id), 1, "one run");
        assert_eq!(p.count_events(id, EventType::ExecutionCancelled).await, 1);
    }
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn a_started_run_of_a_lost_worker_ends_as_worker_lost_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(1, 1), all_runtimes()).await;
    let doomed_executor = Arc::new(ScriptedExecutor::new());
    let doomed = Doomed::start(&p, short_lease("doomed"), doomed_executor.clone());

    let id = p.submit("alice", "block", Priority::Normal).await;
    eventually("the run on the doomed worker", || async {
        doomed_executor.live().contains(&id).then_some(())
    })
    .await;
    doomed.kill();
    let survivor = Arc::new(ScriptedExecutor::new());
    survivor.open_gate();
    p.add_worker(short_lease("survivor"), survivor.clone());

    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    let message = e.error_message.unwrap();
    assert!(message.contains("worker lost"), "{message}");
    assert!(message.contains("doomed"), "{message}");
    assert_eq!(survivor.runs(&id), 0, "never run twice");
    assert_eq!(doomed_executor.runs(&id), 1);
    assert_eq!(p.count_events(&id, EventType::ExecutionFailed).await, 1);
    assert_eq!(p.store.active_allocations("python").await.unwrap(), 0);
    assert!(p.store.runs_of("doomed").await.unwrap().is_empty());

    // The slot (max one active) was freed: the next execution runs on the survivor.
    let next = p.submit("alice", "print:next", Priority::Normal).await;
    assert_eq!(p.finished(&next).await.status, ExecutionStatus::Completed);
    assert_eq!(survivor.runs(&next), 1);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn a_run_settled_as_lost_while_its_worker_lives_on_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(1, 1), all_runtimes()).await;
    let executor = Arc::new(ScriptedExecutor::new());
    // A worker that beats rarely: it has not yet seen that its run was settled when the run
    // ends, as a worker starved past its lease would not.
    let slow = WorkerConfig {
        heartbeat: Duration::from_secs(60),
        lease: Duration::from_secs(120),
        ..worker("slow")
    };
    p.add_worker(slow, executor.clone());

    let id = p.submit("alice", "block", Priority::Normal).await;
    eventually("the run", || async {
        executor.live().contains(&id).then_some(())
    })
    .await;
    eventually("the run marked started", || async {
        let runs = p.store.runs_of("slow").await.unwrap();
        runs.into_iter().find(|r| r.started)
    })
    .await;
    // Another worker's sweep settles it as lost (as after the lease expired).
    let run = p.store.runs_of("slow").await.unwrap().remove(0);
    let lost = EventPayload::ExecutionFailed {
        execution_id: id.clone(),
        exit_code: -1,
        error_type: ErrorType::SystemError,
        error_message: Some("worker lost: worker slow stopped renewing its lease".to_owned()),
        output: Default::default(),
    };
    let settlement = Envelope::new(lost, p.outbox.metadata(Some("alice".to_owned())));
    let stored = p.store.settle_run(&run, &settlement).await.unwrap();
    p.outbox.publish_stored(&stored.expect("settled")).await;
    // The run ends on the worker after that: its outcome is not a second end.
    executor.open_gate();
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    eventually("the run to end on the worker", || async {
        executor.live().is_empty().then_some(())
    })
    .await;
    // The next run ends after the first one's outcome would have been stored.
    let next = p.submit("alice", "print:next", Priority::Normal).await;
    assert_eq!(p.finished(&next).await.status, ExecutionStatus::Completed);
    assert_eq!(p.count_events(&id, EventType::ExecutionFailed).await, 1);
    assert_eq!(
        p.count_events(&id, EventType::ExecutionCompleted).await,
        0,
        "one end per execution"
    );
    assert_eq!(p.count_events(&id, EventType::ResultStored).await, 1);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn a_run_a_lost_worker_never_started_runs_once_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(1, 1), all_runtimes()).await;
    let id = p.submit("alice", "print:again", Priority::Normal).await;
    eventually("the run command", || async {
        (p.count_events(&id, EventType::CreatePodCommand).await == 1).then_some(())
    })
    .await;
    // A worker took the command and died before handing the run to its executor.
    assert!(p.store.claim_run(&id, "vanished").await.unwrap());

    let survivor = Arc::new(ScriptedExecutor::new());
    p.add_worker(worker("survivor"), survivor.clone());
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.stdout.as_deref(), Some("again"));
    assert_eq!(survivor.runs(&id), 1);
    assert_eq!(p.count_events(&id, EventType::CreatePodCommand).await, 2);
    assert_eq!(p.count_events(&id, EventType::ResultStored).await, 1);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn a_redelivered_run_command_starts_one_run_across_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(2, 2), all_runtimes()).await;
    let shared = Arc::new(ScriptedExecutor::new());
    p.add_worker(worker("worker-a"), shared.clone());
    p.add_worker(worker("worker-b"), shared.clone());

    let id = p.submit("alice", "block", Priority::Normal).await;
    p.wait_status(&id, ExecutionStatus::Running).await;
    let command = p
        .store
        .events_for_aggregate(&id, &[EventType::CreatePodCommand], 1)
        .await
        .unwrap()
        .remove(0);
    // Copies of the command, as redeliveries after a crash would bring them, to either worker.
    let mut last = 0;
    for _ in 0..4 {
        let copy = p
            .outbox
            .emit(command.envelope.payload.clone(), Some("alice".into()), None)
            .await
            .unwrap();
        last = copy.seq;
    }
    eventually("the workers to settle the copies", || async {
        let offset = p
            .store
            .consumer_offset("local-worker", EventType::CreatePodCommand)
            .await
            .unwrap();
        (offset >= last).then_some(())
    })
    .await;
    assert_eq!(shared.runs(&id), 1);
    shared.open_gate();
    assert_eq!(p.finished(&id).await.status, ExecutionStatus::Completed);
    assert_eq!(shared.runs(&id), 1);
    assert_eq!(p.count_events(&id, EventType::ExecutionStarted).await, 1);
    p.stop().await;
}

/// Two coordinators and two workers share the store: the caps hold across them.
async fn caps_hold_across_coordinators(mut p: Pipeline) {
    let shared = Arc::new(ScriptedExecutor::new());
    p.add_coordinator();
    p.add_worker(worker("worker-a"), shared.clone());
    p.add_worker(worker("worker-b"), shared.clone());

    let mut owner = HashMap::new();
    for i in 0..12 {
        let user = ["ann", "ben", "cat"][i % 3];
        let id = p.submit(user, "block", Priority::Normal).await;
        owner.insert(id, user);
    }
    eventually("two runs", || async {
        (shared.live().len() == 2).then_some(())
    })
    .await;
    // Both coordinators dispatch on their ticks meanwhile; none goes over the caps.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(shared.live().len(), 2);
    eventually("every execution admitted", || async {
        (p.store.queue_counts().await.unwrap() == (10, 2)).then_some(())
    })
    .await;

    shared.open_gate();
    for id in owner.keys() {
        assert_eq!(p.finished(id).await.status, ExecutionStatus::Completed);
        assert_eq!(shared.runs(id), 1);
    }
    for live in shared.snapshots() {
        assert!(live.len() <= 2, "{} concurrent runs", live.len());
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        for id in &live {
            *per_user.entry(owner[id]).or_default() += 1;
        }
        assert!(per_user.values().all(|n| *n <= 1), "{per_user:?}");
    }
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn caps_hold_across_coordinators_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let p = Pipeline::without_workers(&db, config(2, 1), all_runtimes()).await;
    caps_hold_across_coordinators(p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_across_coordinators_on_postgres() {
    let server = integr8s_store::testkit::PostgresServer::shared();
    let url = server.create_database().await.unwrap();
    // Each side has a pool of its own, as two processes would.
    let mut stores = Vec::new();
    for _ in 0..2 {
        let pg = integr8s_store::PostgresStore::open(&url).await.unwrap();
        pg.migrate().await.unwrap();
        stores.push(Arc::new(pg));
    }
    let store: Arc<dyn Store> = stores[0].clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = stores[0].clone();
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = Outbox::new(events, bus.clone(), "engine-test");
    let mut p = Pipeline::over(store, bus, outbox, config(2, 1), all_runtimes());
    // The second coordinator claims through the other pool.
    let other: Arc<dyn Store> = stores[1].clone();
    p.add_coordinator_over(other);
    caps_hold_across_coordinators(p).await;
}

#[tokio::test]
async fn a_worker_gives_its_lease_up_on_shutdown_and_reports_its_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let mut p = Pipeline::without_workers(&db, config(1, 1), all_runtimes()).await;
    p.add_worker(worker("reporter"), Arc::new(ScriptedExecutor::new()));
    let lease = eventually("the lease", || async {
        p.store
            .live_workers(integr8s_core::now())
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.report.worker_id == "reporter")
    })
    .await;
    assert!(lease.report.executor.ready);
    assert_eq!(lease.report.executor.mode, "scripted");
    let python = lease
        .report
        .runtimes
        .iter()
        .find(|r| r.lang == "python")
        .unwrap();
    assert!(python.versions.contains(&"3.11".to_owned()));
    let store = p.store.clone();
    p.stop().await;
    assert!(store
        .live_workers(integr8s_core::now())
        .await
        .unwrap()
        .is_empty());
}
