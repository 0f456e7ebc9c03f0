//! Cancelling ends an execution as `cancelled`: before its run it never starts, during its run
//! the run is stopped.

use std::sync::Arc;

use integr8s_core::cancel::CancelOutcome;
use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::execution::{ExecutionStatus, Priority};

use crate::harness::{all_runtimes, config, eventually, Pipeline};
use crate::scripted::ScriptedExecutor;

#[tokio::test]
async fn an_execution_cancelled_while_queued_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(1, 1), all_runtimes()).await;

    let blocker = p.submit("alice", "block", Priority::Normal).await;
    p.wait_status(&blocker, ExecutionStatus::Running).await;
    let waiting = p.submit("bob", "print:never", Priority::Critical).await;
    eventually("the second execution to be queued", || async {
        (p.count_events(&waiting, EventType::ExecutionQueued).await == 1).then_some(())
    })
    .await;
    p.cancel(&waiting, "bob").await;

    let e = p.finished(&waiting).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    executor.open_gate();
    let b = p.finished(&blocker).await;
    assert_eq!(b.status, ExecutionStatus::Completed);
    // A later execution takes the slot: the cancelled one held none.
    let next = p.submit("bob", "print:next", Priority::Normal).await;
    assert_eq!(p.finished(&next).await.status, ExecutionStatus::Completed);

    assert_eq!(executor.runs(&waiting), 0);
    // As in the original, a cancel stores no result event; its one `execution_cancelled` ends
    // the pipeline.
    assert_eq!(p.count_events(&waiting, EventType::ResultStored).await, 0);
    assert_eq!(
        p.count_events(&waiting, EventType::ExecutionCancelled)
            .await,
        1
    );
    assert_eq!(e.reported_exit_code(), Some(-1));
    assert_eq!(
        p.count_events(&waiting, EventType::CreatePodCommand).await,
        0
    );
    assert_eq!(
        p.execution(&waiting).await.status,
        ExecutionStatus::Cancelled
    );
    p.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_execution_stops_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(2, 2), all_runtimes()).await;

    let id = p.submit("alice", "block", Priority::Normal).await;
    p.wait_status(&id, ExecutionStatus::Running).await;
    eventually("the run to start", || async {
        executor.live().contains(&id).then_some(())
    })
    .await;
    let requested = p.cancel(&id, "alice").await;
    assert!(
        matches!(requested, CancelOutcome::Stopping { .. }),
        "{requested:?}"
    );

    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled);
    assert_eq!(e.exit_code, Some(-1));
    assert_eq!(executor.runs(&id), 1);
    assert!(executor.live().is_empty());
    assert_eq!(p.count_events(&id, EventType::ResultStored).await, 0);
    let cancels = p
        .store
        .events_for_aggregate(&id, &[EventType::ExecutionCancelled], 10)
        .await
        .unwrap();
    assert_eq!(cancels.len(), 1, "one execution_cancelled per cancel");
    assert!(
        matches!(
            &cancels[0].envelope.payload,
            EventPayload::ExecutionCancelled { force_terminated: true, cancelled_by, .. } if cancelled_by == "alice"
        ),
        "{:?}",
        cancels[0].envelope.payload
    );
    assert_eq!(p.count_events(&id, EventType::PodTerminated).await, 1);
    assert_eq!(p.count_events(&id, EventType::PodDeleted).await, 1);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}
