//! One execution from `execution_requested` to its stored result, for each kind of outcome.

use std::sync::Arc;

use integr8s_core::event::EventType;
use integr8s_core::execution::{ErrorType, ExecutionStatus, Priority};
use integr8s_core::saga::SagaState;

use crate::harness::{all_runtimes, config, Pipeline};
use crate::scripted::ScriptedExecutor;

async fn scripted_pipeline(dir: &tempfile::TempDir) -> (Pipeline, Arc<ScriptedExecutor>) {
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(4, 4), all_runtimes()).await;
    (p, executor)
}

#[tokio::test]
async fn a_requested_execution_completes_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let (p, executor) = scripted_pipeline(&dir).await;
    let id = p.submit("alice", "print:hello\n", Priority::Normal).await;

    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.stdout.as_deref(), Some("hello\n"));
    assert_eq!(e.exit_code, Some(0));
    assert_eq!(e.error_type, None);
    let usage = e.resource_usage.unwrap();
    assert_eq!(usage.cpu_time_jiffies, 3);
    assert_eq!(usage.clk_tck_hertz, 100);
    assert_eq!(usage.peak_memory_kb, 4096);
    assert_eq!(executor.runs(&id), 1);

    for t in [
        EventType::ExecutionQueued,
        EventType::ExecutionAccepted,
        EventType::SagaStarted,
        EventType::CreatePodCommand,
        EventType::PodCreated,
        EventType::PodScheduled,
        EventType::ExecutionStarted,
        EventType::PodRunning,
        EventType::ExecutionRunning,
        EventType::ExecutionCompleted,
        EventType::PodSucceeded,
        EventType::PodDeleted,
        EventType::ResultStored,
    ] {
        assert_eq!(p.count_events(&id, t).await, 1, "{t}");
    }
    // The worker's events come in the original's order: the pod is placed and running before
    // the outcome, its end and deletion follow the outcome.
    let worker_events: Vec<EventType> = p
        .store
        .events_for_aggregate(&id, &[], 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.envelope.event_type())
        .filter(|t| t.as_str().starts_with("pod_") || t.is_run_outcome())
        .collect();
    assert_eq!(
        worker_events,
        [
            EventType::PodCreated,
            EventType::PodScheduled,
            EventType::PodRunning,
            EventType::ExecutionCompleted,
            EventType::PodSucceeded,
            EventType::PodDeleted,
        ]
    );
    // The saga ends and the slot and allocation are freed.
    crate::harness::eventually("the saga to complete", || async {
        let saga = p.store.saga_for_execution(&id).await.unwrap().unwrap();
        (saga.state == SagaState::Completed).then_some(saga)
    })
    .await;
    assert_eq!(p.store.active_allocations("python").await.unwrap(), 0);
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}

#[tokio::test]
async fn a_non_zero_exit_completes_with_a_script_error() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = scripted_pipeline(&dir).await;
    let id = p.submit("alice", "exit:3", Priority::Normal).await;
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.exit_code, Some(3));
    assert_eq!(e.error_type, Some(ErrorType::ScriptError));
    p.stop().await;
}

#[tokio::test]
async fn a_wall_timeout_ends_as_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = scripted_pipeline(&dir).await;
    let id = p.submit("alice", "timeout", Priority::Normal).await;
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Timeout);
    assert_eq!(e.error_type, Some(ErrorType::Timeout));
    assert_eq!(e.stdout.as_deref(), Some("partial"));
    let saga = crate::harness::eventually("the saga to end", || async {
        let saga = p.store.saga_for_execution(&id).await.unwrap().unwrap();
        saga.state.is_terminal().then_some(saga)
    })
    .await;
    assert_eq!(saga.state, SagaState::Timeout);
    p.stop().await;
}

#[tokio::test]
async fn a_sandbox_failure_ends_as_a_system_error() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = scripted_pipeline(&dir).await;
    let id = p.submit("alice", "fail", Priority::Normal).await;
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert!(e.error_message.unwrap().contains("scripted failure"));
    assert_eq!(p.store.queue_counts().await.unwrap(), (0, 0));
    p.stop().await;
}
