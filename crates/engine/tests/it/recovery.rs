//! Restarts and redeliveries never run a script twice and never leave an execution behind.

use std::sync::Arc;

use integr8s_core::event::EventType;
use integr8s_core::execution::{ErrorType, ExecutionStatus, Priority};
use integr8s_core::ports::{ExecutionStore, QueueEntry, WorkerStore};

use crate::harness::{all_runtimes, config, eventually, open_store, request, Pipeline};
use crate::scripted::ScriptedExecutor;

#[tokio::test]
async fn a_restart_finishes_queued_executions_running_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let executor = Arc::new(ScriptedExecutor::new());

    let first = Pipeline::start_with(&db, executor.clone(), config(1, 1), all_runtimes()).await;
    let running = first.submit("alice", "block", Priority::Normal).await;
    first.wait_status(&running, ExecutionStatus::Running).await;
    let mut queued = Vec::new();
    for i in 0..3 {
        let id = first
            .submit("alice", &format!("print:{i}"), Priority::Normal)
            .await;
        queued.push(id);
    }
    for id in &queued {
        eventually("queued", || async {
            (first.count_events(id, EventType::ExecutionQueued).await == 1).then_some(())
        })
        .await;
    }
    first.stop().await;

    executor.open_gate();
    let second = Pipeline::start_with(&db, executor.clone(), config(1, 1), all_runtimes()).await;
    for (i, id) in queued.iter().enumerate() {
        let e = second.finished(id).await;
        assert_eq!(e.status, ExecutionStatus::Completed);
        assert_eq!(e.stdout, Some(i.to_string()));
        assert_eq!(executor.runs(id), 1);
        assert_eq!(second.count_events(id, EventType::ResultStored).await, 1);
    }
    // The run stopped by the shutdown is reported as interrupted, not re-run.
    let e = second.finished(&running).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert!(e.error_message.unwrap().contains("interrupted"));
    assert_eq!(executor.runs(&running), 1);
    assert_eq!(second.store.queue_counts().await.unwrap(), (0, 0));
    second.stop().await;
}

#[tokio::test]
async fn a_redelivered_run_command_does_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(2, 2), all_runtimes()).await;

    let id = p.submit("alice", "block", Priority::Normal).await;
    p.wait_status(&id, ExecutionStatus::Running).await;
    let command = p
        .store
        .events_for_aggregate(&id, &[EventType::CreatePodCommand], 1)
        .await
        .unwrap()
        .remove(0);
    // The same command again, as a redelivery after a lost ack would bring it.
    let copy = p
        .outbox
        .emit(command.envelope.payload.clone(), Some("alice".into()), None)
        .await
        .unwrap();
    eventually("the worker to settle the copy", || async {
        let offset = p
            .store
            .consumer_offset("local-worker", EventType::CreatePodCommand)
            .await
            .unwrap();
        (offset >= copy.seq).then_some(())
    })
    .await;
    assert_eq!(executor.runs(&id), 1);

    executor.open_gate();
    assert_eq!(p.finished(&id).await.status, ExecutionStatus::Completed);
    assert_eq!(executor.runs(&id), 1);
    assert_eq!(p.count_events(&id, EventType::ExecutionStarted).await, 1);
    p.stop().await;
}

#[tokio::test]
async fn a_run_found_running_at_start_is_ended_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    // A previous process, whose worker had the id the new one gets, stored the execution,
    // scheduled it and started its run, then died.
    let id = {
        let store = open_store(&db).await;
        let (execution, env) = request("alice", "print:x", Priority::Normal);
        store.create_execution(&execution, &env).await.unwrap();
        let id = execution.execution_id;
        assert!(store
            .transition_execution(&id, &[ExecutionStatus::Queued], ExecutionStatus::Scheduled)
            .await
            .unwrap());
        assert!(store.claim_run(&id, "worker-1").await.unwrap());
        assert!(store.mark_run_started(&id, "worker-1").await.unwrap());
        id
    };

    let executor = Arc::new(ScriptedExecutor::new());
    let p = Pipeline::start_with(&db, executor.clone(), config(2, 2), all_runtimes()).await;
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert_eq!(
        e.error_message.as_deref(),
        Some("run interrupted by a service restart")
    );
    assert_eq!(executor.runs(&id), 0);
    p.stop().await;
}

/// A coordinator that scheduled an execution and stopped before announcing it (or whose
/// announcement failed) leaves it `scheduled` with its slot held; a running coordinator's
/// repair round announces it once the claim timeout passed, and it runs once.
#[tokio::test]
async fn a_scheduled_execution_never_announced_is_announced_by_a_running_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let executor = Arc::new(ScriptedExecutor::new());
    let (store, bus, outbox) = crate::harness::parts(&db).await;

    // What a dispatch leaves when it stops between the schedule and `execution_accepted`.
    let (execution, requested) = request("alice", "print:late", Priority::Normal);
    store
        .create_execution(&execution, &requested)
        .await
        .unwrap();
    let id = execution.execution_id.clone();
    store
        .enqueue(&QueueEntry {
            execution_id: id.clone(),
            user_id: "alice".into(),
            priority: Priority::Normal,
            enqueued_at: execution.created_at,
            active_since: None,
        })
        .await
        .unwrap();
    let policy = config(1, 1).queue;
    let claimed = store
        .claim_next(&policy, integr8s_core::now())
        .await
        .unwrap();
    assert_eq!(claimed.map(|e| e.execution_id), Some(id.clone()));
    assert!(store
        .transition_execution(&id, &[ExecutionStatus::Queued], ExecutionStatus::Scheduled)
        .await
        .unwrap());

    // The coordinator starts before the claim is stale, so its start-up recovery leaves the
    // execution alone; only the repair rounds while it runs can announce it.
    let mut short = config(1, 1);
    short.claim_timeout = std::time::Duration::from_millis(300);
    let mut p = Pipeline::over(store, bus, outbox, short, all_runtimes());
    p.add_worker(crate::harness::worker("worker-1"), executor.clone());
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.stdout.as_deref(), Some("late"));
    assert_eq!(executor.runs(&id), 1);
    assert_eq!(p.count_events(&id, EventType::ExecutionAccepted).await, 1);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}
