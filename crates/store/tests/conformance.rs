//! The store conformance suite against SQLite: a fresh database file per test (WAL, the
//! writer/reader pools) and a private in-memory database per test.

use std::sync::Arc;

use integr8s_core::ports::Store;
use integr8s_core::testsuite::store::Fixture;
use integr8s_store::SqliteStore;

async fn file_store() -> Fixture<dyn Store> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    Fixture::with_guard(Arc::new(store), dir)
}

async fn memory_store() -> Fixture<dyn Store> {
    let store = SqliteStore::open("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    Fixture::new(Arc::new(store))
}

mod file {
    integr8s_core::store_test_suite!(super::file_store());
}

mod memory {
    integr8s_core::store_test_suite!(super::memory_store());
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_migrations_are_idempotent() {
    use integr8s_core::ports::ConsumerOffsetStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-missing.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    store
        .commit_offset("g", integr8s_core::EventType::ResultStored, 9)
        .await
        .unwrap();
    store.close().await;

    let again = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    again.migrate().await.unwrap();
    let seq = again
        .consumer_offset("g", integr8s_core::EventType::ResultStored)
        .await
        .unwrap();
    assert_eq!(seq, 9);
}

/// The writes that store a state change with the events announcing it: both, or neither.
mod with_events {
    use chrono::Duration;
    use integr8s_core::execution::ExecutionResultRecord;
    use integr8s_core::ports::{CreateExecution, QueueEntry, QueuePolicy, ScheduleClaim, Store};
    use integr8s_core::saga::{Saga, SagaState};
    use integr8s_core::testsuite::store::{requested_event, sample_execution, small_event};
    use integr8s_core::{EventType, ExecutionStatus, Priority, StoreError};

    async fn stored_ids(store: &dyn Store, execution_id: &str) -> Vec<String> {
        store
            .events_for_aggregate(execution_id, &[], 0)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.envelope.event_id)
            .collect()
    }

    async fn new_execution(store: &dyn Store) -> String {
        let e = sample_execution("u1", "python", Duration::zero());
        match store
            .create_execution(&e, &requested_event(&e))
            .await
            .expect("create")
        {
            CreateExecution::Created(e, _) => e.execution_id,
            CreateExecution::Existing(e) => e.execution_id,
        }
    }

    #[tokio::test]
    async fn a_saga_is_saved_with_its_events_and_a_refused_save_stores_none() {
        let f = super::file_store().await;
        let store = f.store.as_ref();
        let (mut saga, _) = store
            .get_or_create_saga(&Saga::new("e1", "u1"))
            .await
            .expect("saga");
        saga.state = SagaState::Running;
        let started = small_event(EventType::SagaStarted, "e1");
        let stored = store
            .save_saga_with_events(&saga, std::slice::from_ref(&started))
            .await
            .expect("save");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].envelope.event_id, started.event_id);
        saga.state = SagaState::Completed;
        let completed = small_event(EventType::SagaCompleted, "e1");
        store
            .save_saga_with_events(&saga, std::slice::from_ref(&completed))
            .await
            .expect("save");
        // Terminal: refused, and its event is not stored either.
        saga.state = SagaState::Running;
        let late = small_event(EventType::SagaStarted, "e1");
        let refused = store
            .save_saga_with_events(&saga, std::slice::from_ref(&late))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(
            stored_ids(store, "e1").await,
            vec![started.event_id, completed.event_id]
        );
        let saved = store
            .saga(&saga.saga_id)
            .await
            .expect("read")
            .expect("saga");
        assert_eq!(saved.state, SagaState::Completed);
    }

    #[tokio::test]
    async fn a_result_is_announced_only_by_the_write_that_stores_it() {
        let f = super::file_store().await;
        let store = f.store.as_ref();
        let id = new_execution(store).await;
        let record = ExecutionResultRecord {
            status: ExecutionStatus::Completed,
            stdout: "hi\n".to_owned(),
            stderr: String::new(),
            exit_code: Some(0),
            error_type: None,
            error_message: None,
            resource_usage: None,
        };
        let first = small_event(EventType::ResultStored, &id);
        let written = store
            .finish_execution_with_events(&id, &record, std::slice::from_ref(&first))
            .await
            .expect("finish");
        assert_eq!(written.map(|v| v.len()), Some(1));
        let second = small_event(EventType::ResultStored, &id);
        let again = store
            .finish_execution_with_events(&id, &record, std::slice::from_ref(&second))
            .await
            .expect("finish");
        assert!(again.is_none());
        let ids = stored_ids(store, &id).await;
        assert!(ids.contains(&first.event_id) && !ids.contains(&second.event_id));
    }

    #[tokio::test]
    async fn an_acceptance_is_stored_only_by_the_schedule_that_holds_the_claim() {
        let f = super::file_store().await;
        let store = f.store.as_ref();
        let id = new_execution(store).await;
        let entry = QueueEntry {
            execution_id: id.clone(),
            user_id: "u1".to_owned(),
            priority: Priority::Normal,
            enqueued_at: integr8s_core::now(),
            active_since: None,
        };
        assert!(store.enqueue(&entry).await.expect("enqueue"));
        let policy = QueuePolicy {
            max_active: 4,
            max_active_per_user: 4,
            ageing_seconds: 0,
        };
        let claimed = store
            .claim_next(&policy, integr8s_core::now())
            .await
            .expect("claim")
            .expect("an entry");
        let claim = claimed.active_since.expect("claim token");
        let accepted = small_event(EventType::ExecutionAccepted, &id);
        let (outcome, stored) = store
            .schedule_claimed_with_events(&id, claim, std::slice::from_ref(&accepted))
            .await
            .expect("schedule");
        assert_eq!((outcome, stored.len()), (ScheduleClaim::Scheduled, 1));
        // The claim was consumed: a second schedule with it changes and stores nothing.
        let late = small_event(EventType::ExecutionAccepted, &id);
        let (outcome, stored) = store
            .schedule_claimed_with_events(&id, claim, std::slice::from_ref(&late))
            .await
            .expect("schedule");
        assert_eq!((outcome, stored.len()), (ScheduleClaim::ClaimLost, 0));
        let ids = stored_ids(store, &id).await;
        assert!(ids.contains(&accepted.event_id) && !ids.contains(&late.event_id));
        // Nothing pending: the claim round answers without an entry.
        assert!(store
            .claim_next(&policy, integr8s_core::now())
            .await
            .expect("claim")
            .is_none());
    }
}
