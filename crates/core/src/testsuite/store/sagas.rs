//! Sagas and resource allocations.

use super::*;

pub async fn saga_get_or_create_is_atomic(store: S) {
    let saga = Saga::new("e1", "u1");
    let (got, created) = store.get_or_create_saga(&saga).await.unwrap();
    assert!(created);
    assert_eq!(got, saga);
    let (again, created) = store
        .get_or_create_saga(&Saga::new("e1", "u1"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.saga_id, saga.saga_id);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .get_or_create_saga(&Saga::new("e2", "u1"))
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (s, c) = t.await.unwrap();
        ids.insert(s.saga_id);
        created += usize::from(c);
    }
    assert_eq!((ids.len(), created), (1, 1));
}

pub async fn saga_save_and_terminal_is_frozen(store: S) {
    let (mut saga, _) = store
        .get_or_create_saga(&Saga::new("e1", "u1"))
        .await
        .unwrap();
    store
        .get_or_create_saga(&Saga::new("e2", "u2"))
        .await
        .unwrap();
    saga.state = SagaState::Running;
    saga.current_step = Some("allocate_resources".to_owned());
    saga.completed_steps = vec!["validate_execution".to_owned()];
    saga.context = serde_json::json!({"allocation_id": "a1", "pod": true});
    saga.retry_count = 1;
    saga.updated_at = crate::now();
    store.save_saga(&saga).await.unwrap();
    assert_eq!(store.saga(&saga.saga_id).await.unwrap(), Some(saga.clone()));
    assert_eq!(
        store.saga_for_execution("e1").await.unwrap(),
        Some(saga.clone())
    );
    assert_eq!(store.saga("missing").await.unwrap(), None);

    let running = SagaFilter {
        state: Some(SagaState::Running),
        ..Default::default()
    };
    let (items, total) = store.list_sagas(&running).await.unwrap();
    assert_eq!((items, total), (vec![saga.clone()], 1));
    let by_user = SagaFilter {
        user_id: Some("u2".into()),
        ..Default::default()
    };
    let (items, total) = store.list_sagas(&by_user).await.unwrap();
    assert_eq!((items.len(), total), (1, 1));
    assert_eq!(items[0].execution_id, "e2");
    let by_exec = SagaFilter {
        execution_id: Some("e1".into()),
        ..Default::default()
    };
    assert_eq!(store.list_sagas(&by_exec).await.unwrap().1, 1);
    let page = SagaFilter {
        limit: 1,
        skip: 1,
        ..Default::default()
    };
    let (items, total) = store.list_sagas(&page).await.unwrap();
    assert_eq!((items.len(), total), (1, 2));

    saga.state = SagaState::Completed;
    saga.completed_at = Some(crate::now());
    store.save_saga(&saga).await.unwrap();
    let mut reopened = saga.clone();
    reopened.state = SagaState::Compensating;
    assert!(matches!(
        store.save_saga(&reopened).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.save_saga(&saga).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.saga(&saga.saga_id).await.unwrap(), Some(saga));
    let unknown = Saga::new("e9", "u1");
    assert!(matches!(
        store.save_saga(&unknown).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn allocations_are_idempotent(store: S) {
    let id = store.allocate("e1", "python").await.unwrap();
    assert_eq!(store.allocate("e1", "python").await.unwrap(), id);
    store.allocate("e2", "python").await.unwrap();
    assert_eq!(store.active_allocations("python").await.unwrap(), 2);
    assert_eq!(store.active_allocations("go").await.unwrap(), 0);
    assert!(store.release_allocation("e1").await.unwrap());
    assert!(!store.release_allocation("e1").await.unwrap());
    assert!(!store.release_allocation("missing").await.unwrap());
    assert_eq!(store.active_allocations("python").await.unwrap(), 1);
    // A late, redelivered allocate does not re-activate a released allocation.
    assert_eq!(store.allocate("e1", "python").await.unwrap(), id);
    assert_eq!(store.active_allocations("python").await.unwrap(), 1);
}
