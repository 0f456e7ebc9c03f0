//! Executions: the outbox write, idempotency keys, listing, compare-and-set transitions, the one-time result and deletion.

use super::*;

pub async fn execution_create_get_and_list(store: S) {
    let mut made = Vec::new();
    for (i, (user, lang)) in [
        ("u1", "python"),
        ("u2", "python"),
        ("u1", "go"),
        ("u1", "python"),
    ]
    .into_iter()
    .enumerate()
    {
        let e = sample_execution(user, lang, Duration::minutes(10 - i as i64));
        assert_eq!(create(&store, &e).await, e);
        assert_eq!(
            store.execution(&e.execution_id).await.unwrap(),
            Some(e.clone())
        );
        made.push(e);
    }
    assert_eq!(store.execution("missing").await.unwrap(), None);
    let ids = |v: &[Execution]| v.iter().map(|e| e.execution_id.clone()).collect::<Vec<_>>();
    let newest_first: Vec<String> = made.iter().rev().map(|e| e.execution_id.clone()).collect();

    let (all, total) = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!((ids(&all), total), (newest_first.clone(), 4));

    let page = ExecutionFilter {
        limit: 2,
        skip: 1,
        ..Default::default()
    };
    let (items, total) = store.list_executions(&page).await.unwrap();
    assert_eq!((ids(&items), total), (newest_first[1..3].to_vec(), 4));

    let by_user = ExecutionFilter {
        user_id: Some("u1".into()),
        ..Default::default()
    };
    let (items, total) = store.list_executions(&by_user).await.unwrap();
    assert_eq!(total, 3);
    assert!(items.iter().all(|e| e.user_id == "u1"));

    let by_lang = ExecutionFilter {
        lang: Some("go".into()),
        ..Default::default()
    };
    let (items, total) = store.list_executions(&by_lang).await.unwrap();
    assert_eq!(
        (ids(&items), total),
        (vec![made[2].execution_id.clone()], 1)
    );

    let moved = store
        .transition_execution(
            &made[1].execution_id,
            &[ExecutionStatus::Queued],
            ExecutionStatus::Scheduled,
        )
        .await
        .unwrap();
    assert!(moved);
    let by_status = ExecutionFilter {
        status: Some(ExecutionStatus::Scheduled),
        ..Default::default()
    };
    let (items, total) = store.list_executions(&by_status).await.unwrap();
    assert_eq!(
        (ids(&items), total),
        (vec![made[1].execution_id.clone()], 1)
    );

    // Inclusive bounds on updated_at: exactly the first two untouched executions.
    let window = ExecutionFilter {
        start_time: Some(made[0].updated_at),
        end_time: Some(made[2].updated_at),
        ..Default::default()
    };
    let (items, total) = store.list_executions(&window).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        ids(&items),
        vec![made[2].execution_id.clone(), made[0].execution_id.clone()]
    );

    let mut active = ids(&store.executions_in(&ExecutionStatus::ACTIVE).await.unwrap());
    active.sort();
    let mut expected = ids(&made);
    expected.sort();
    assert_eq!(active, expected);
    assert!(store
        .executions_in(&[ExecutionStatus::Completed])
        .await
        .unwrap()
        .is_empty());
}

pub async fn execution_idempotency_key_returns_existing(store: S) {
    let mut first = sample_execution("u1", "python", Duration::zero());
    first.idempotency_key = Some("key-1".to_owned());
    let event = requested_event(&first);
    let stored = match store.create_execution(&first, &event).await.unwrap() {
        CreateExecution::Created(e, stored) => {
            assert_eq!(e, first);
            stored
        }
        other => panic!("expected Created, got {other:?}"),
    };
    assert!(stored.seq > 0);
    assert_eq!(stored.envelope, event);
    let last = store.last_seq().await.unwrap();

    let mut second = sample_execution("u1", "python", Duration::zero());
    second.idempotency_key = Some("key-1".to_owned());
    let again = store
        .create_execution(&second, &requested_event(&second))
        .await
        .unwrap();
    assert_eq!(again, CreateExecution::Existing(first.clone()));
    assert_eq!(
        store.last_seq().await.unwrap(),
        last,
        "no second event is stored"
    );
    assert_eq!(store.execution(&second.execution_id).await.unwrap(), None);
    let events = store
        .events_for_aggregate(&second.execution_id, &[], 10)
        .await
        .unwrap();
    assert!(events.is_empty());

    // The key is scoped to the user.
    let mut other_user = sample_execution("u2", "python", Duration::zero());
    other_user.idempotency_key = Some("key-1".to_owned());
    let created = store
        .create_execution(&other_user, &requested_event(&other_user))
        .await
        .unwrap();
    assert!(matches!(created, CreateExecution::Created(..)));

    // Concurrent submissions with one key store exactly one execution.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut e = sample_execution("u3", "python", Duration::zero());
            e.idempotency_key = Some("race".to_owned());
            match store
                .create_execution(&e, &requested_event(&e))
                .await
                .unwrap()
            {
                CreateExecution::Created(e, _) | CreateExecution::Existing(e) => e.execution_id,
            }
        }));
    }
    let mut winners = HashSet::new();
    for t in tasks {
        winners.insert(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1);
}

pub async fn execution_transition_is_compare_and_set(store: S) {
    let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let id = e.execution_id.as_str();
    use ExecutionStatus::*;
    assert!(store
        .transition_execution(id, &[Queued], Scheduled)
        .await
        .unwrap());
    assert!(!store
        .transition_execution(id, &[Queued], Scheduled)
        .await
        .unwrap());
    assert!(!store.transition_execution(id, &[], Running).await.unwrap());
    assert!(!store
        .transition_execution("missing", &[Queued], Running)
        .await
        .unwrap());
    let now = store.execution(id).await.unwrap().unwrap();
    assert_eq!(now.status, Scheduled);
    assert!(now.updated_at >= e.updated_at);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            store
                .transition_execution(&id, &[Scheduled], Running)
                .await
                .unwrap()
        }));
    }
    let mut moved = 0;
    for t in tasks {
        moved += usize::from(t.await.unwrap());
    }
    assert_eq!(moved, 1, "exactly one concurrent transition wins");
    assert!(store
        .transition_execution(id, &[Queued, Running], Cancelled)
        .await
        .unwrap());
}

pub async fn execution_finish_only_once(store: S) {
    let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let mut q = entry("u1", Priority::Normal, crate::now());
    q.execution_id = e.execution_id.clone();
    assert!(store.enqueue(&q).await.unwrap());
    store.allocate(&e.execution_id, "python").await.unwrap();
    assert_eq!(store.active_allocations("python").await.unwrap(), 1);
    let usage = ResourceUsage {
        execution_time_wall_seconds: 0.125,
        cpu_time_jiffies: 7,
        clk_tck_hertz: 100,
        peak_memory_kb: 2048,
    };
    let result = ExecutionResultRecord {
        status: ExecutionStatus::Completed,
        stdout: "hi\n".to_owned(),
        stderr: "warn\n".to_owned(),
        exit_code: Some(3),
        error_type: Some(ErrorType::ScriptError),
        error_message: None,
        resource_usage: Some(usage),
    };
    assert!(store
        .finish_execution(&e.execution_id, &result)
        .await
        .unwrap());
    assert_eq!(
        store.queue_counts().await.unwrap(),
        (0, 0),
        "finishing frees the queue entry"
    );
    assert_eq!(
        store.active_allocations("python").await.unwrap(),
        0,
        "finishing releases the allocation"
    );
    // An entry left behind by an earlier crash is freed even when the result is not written.
    assert!(store.enqueue(&q).await.unwrap());
    let failed = ExecutionResultRecord {
        status: ExecutionStatus::Failed,
        stdout: String::new(),
        ..result.clone()
    };
    assert!(!store
        .finish_execution(&e.execution_id, &failed)
        .await
        .unwrap());
    assert_eq!(store.queue_counts().await.unwrap(), (0, 0));
    assert!(!store.finish_execution("missing", &result).await.unwrap());

    let done = store.execution(&e.execution_id).await.unwrap().unwrap();
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert_eq!(done.stdout.as_deref(), Some("hi\n"));
    assert_eq!(done.stderr.as_deref(), Some("warn\n"));
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.error_type, Some(ErrorType::ScriptError));
    assert_eq!(done.resource_usage, Some(usage));
    let moved = store
        .transition_execution(
            &e.execution_id,
            &ExecutionStatus::ACTIVE,
            ExecutionStatus::Running,
        )
        .await
        .unwrap();
    assert!(!moved, "a terminal execution does not move back");
}

pub async fn execution_delete_removes_dependents(store: S) {
    let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let id = e.execution_id.clone();
    let mut q = entry("u1", Priority::Normal, crate::now());
    q.execution_id = id.clone();
    assert!(store.enqueue(&q).await.unwrap());
    store
        .get_or_create_saga(&Saga::new(&id, "u1"))
        .await
        .unwrap();
    store.allocate(&id, "python").await.unwrap();

    assert!(store.delete_execution(&id).await.unwrap());
    assert_eq!(store.execution(&id).await.unwrap(), None);
    assert_eq!(store.queue_counts().await.unwrap(), (0, 0));
    assert_eq!(store.saga_for_execution(&id).await.unwrap(), None);
    assert_eq!(store.active_allocations("python").await.unwrap(), 0);
    assert!(!store.delete_execution(&id).await.unwrap());
}
