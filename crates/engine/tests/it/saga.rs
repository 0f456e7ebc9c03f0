//! A failing saga step is compensated and ends the execution as a system error, freeing its slot.

use std::sync::Arc;

use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::execution::{ErrorType, ExecutionStatus, Priority};
use integr8s_core::saga::SagaState;

use crate::harness::{all_runtimes, config, eventually, request, Pipeline};
use crate::scripted::ScriptedExecutor;

#[tokio::test]
async fn an_oversized_script_fails_validation_and_frees_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(1, 1), all_runtimes()).await;

    // Bigger than the API would ever accept, stored directly.
    let script = format!("print:{}", "x".repeat(1024 * 1024));
    let id = p.submit("alice", &script, Priority::Normal).await;
    let e = p.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error);
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert!(e.error_message.unwrap().contains("validate_execution"));
    assert_eq!(executor.runs(&id), 0);

    let saga = p.store.saga_for_execution(&id).await.unwrap().unwrap();
    assert_eq!(saga.state, SagaState::Failed);
    assert!(saga.completed_steps.is_empty());
    assert_eq!(p.count_events(&id, EventType::SagaFailed).await, 1);

    // The only slot is free again.
    let next = p.submit("alice", "print:ok", Priority::Normal).await;
    assert_eq!(p.finished(&next).await.status, ExecutionStatus::Completed);
    p.stop().await;
}

#[tokio::test]
async fn a_failing_later_step_compensates_the_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(1, 1), all_runtimes()).await;

    // The request event is filed under another aggregate, so `create_pod` finds no run
    // request after `allocate_resources` succeeded.
    let (execution, env) = request("alice", "print:x", Priority::Normal);
    let env = env.with_aggregate("elsewhere");
    let id = execution.execution_id.clone();
    match p.store.create_execution(&execution, &env).await.unwrap() {
        integr8s_core::ports::CreateExecution::Created(_, stored) => {
            p.outbox.publish_stored(&stored).await
        }
        other => panic!("{other:?}"),
    }

    let e = p.wait_status(&id, ExecutionStatus::Error).await;
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    let saga = eventually("the saga to fail", || async {
        let saga = p.store.saga_for_execution(&id).await.unwrap()?;
        (saga.state == SagaState::Failed).then_some(saga)
    })
    .await;
    assert_eq!(
        saga.completed_steps,
        ["validate_execution", "allocate_resources"]
    );
    assert_eq!(saga.compensated_steps, ["release_resources"]);
    assert_eq!(p.store.active_allocations("python").await.unwrap(), 0);
    assert_eq!(executor.runs(&id), 0);
    eventually("the slot to be free", || async {
        (p.store.queue_counts().await.unwrap() == (0, 0)).then_some(())
    })
    .await;
    p.stop().await;
}

#[tokio::test]
async fn a_cancel_seen_before_the_acceptance_keeps_the_saga_from_running() {
    let dir = tempfile::tempdir().unwrap();
    let (store, bus, outbox) = crate::harness::parts(&dir.path().join("engine.db")).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let saga =
        integr8s_engine::SagaOrchestrator::new(store.clone(), bus, outbox.clone(), config(1, 1));
    let task = tokio::spawn(saga.run(shutdown.clone()));

    let id = crate::harness::submit(
        store.as_ref(),
        &outbox,
        "alice",
        "print:x",
        Priority::Normal,
    )
    .await;
    assert!(store
        .transition_execution(&id, &[ExecutionStatus::Queued], ExecutionStatus::Scheduled)
        .await
        .unwrap());
    // The saga group sees the cancel first (topics are consumed independently).
    let cancel = EventPayload::ExecutionCancelled {
        execution_id: id.clone(),
        cancelled_by: "user".into(),
        force_terminated: false,
        reason: None,
    };
    outbox
        .emit(cancel, Some("alice".into()), None)
        .await
        .unwrap();
    eventually("the saga to be cancelled", || async {
        let saga = store.saga_for_execution(&id).await.unwrap()?;
        (saga.state == SagaState::Cancelled).then_some(())
    })
    .await;
    let accepted = EventPayload::ExecutionAccepted {
        execution_id: id.clone(),
        queue_position: 0,
        estimated_wait_seconds: None,
        priority: Priority::Normal,
    };
    let accepted = outbox
        .emit(accepted, Some("alice".into()), None)
        .await
        .unwrap();
    eventually("the saga group to settle the acceptance", || async {
        let offset = store
            .consumer_offset("saga-orchestrator", EventType::ExecutionAccepted)
            .await
            .unwrap();
        (offset >= accepted.seq).then_some(())
    })
    .await;

    let events = store.events_for_aggregate(&id, &[], 100).await.unwrap();
    let kinds: Vec<EventType> = events.iter().map(|e| e.envelope.event_type()).collect();
    assert!(!kinds.contains(&EventType::CreatePodCommand), "{kinds:?}");
    assert!(!kinds.contains(&EventType::SagaStarted), "{kinds:?}");
    assert_eq!(store.active_allocations("python").await.unwrap(), 0);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
