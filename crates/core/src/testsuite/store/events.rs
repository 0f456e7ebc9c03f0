//! The event log and consumer-group offsets.

use super::*;

pub async fn events_append_is_idempotent_and_ordered(store: S) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    let a = small_event(EventType::ExecutionQueued, "e1");
    let b = small_event(EventType::ResultStored, "e1");
    let c = small_event(EventType::ExecutionQueued, "e2");
    let sa = store.append_event(&a).await.unwrap();
    let sb = store.append_event(&b).await.unwrap();
    let sc = store.append_event(&c).await.unwrap();
    assert!(sa.seq < sb.seq && sb.seq < sc.seq);
    assert_eq!(sa.envelope, a);
    assert_eq!(store.last_seq().await.unwrap(), sc.seq);

    let mut changed = a.clone();
    changed.aggregate_id = Some("other".to_owned());
    assert_eq!(
        store.append_event(&changed).await.unwrap(),
        sa,
        "existing event_id is a no-op"
    );
    assert_eq!(store.last_seq().await.unwrap(), sc.seq);

    let queued = store
        .events_after(&[EventType::ExecutionQueued], 0, 100)
        .await
        .unwrap();
    assert_eq!(queued, vec![sa.clone(), sc.clone()]);
    let after = store
        .events_after(&[EventType::ExecutionQueued], sa.seq, 100)
        .await
        .unwrap();
    assert_eq!(after, vec![sc.clone()]);
    let limited = store
        .events_after(&[EventType::ExecutionQueued, EventType::ResultStored], 0, 2)
        .await
        .unwrap();
    assert_eq!(limited, vec![sa.clone(), sb.clone()]);
    let none = store
        .events_after(&[EventType::SagaStarted], 0, 100)
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn events_append_batch_keeps_order_and_is_idempotent(store: S) {
    assert!(store.append_events(&[]).await.unwrap().is_empty());
    let first = store
        .append_event(&small_event(EventType::ExecutionQueued, "e1"))
        .await
        .unwrap();
    let batch = [
        small_event(EventType::PodCreated, "e1"),
        first.envelope.clone(),
        small_event(EventType::PodScheduled, "e1"),
        small_event(EventType::ExecutionStarted, "e1"),
    ];
    let stored = store.append_events(&batch).await.unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[1], first, "an existing event_id is left as stored");
    assert!(first.seq < stored[0].seq);
    assert!(stored[0].seq < stored[2].seq && stored[2].seq < stored[3].seq);
    for (s, e) in stored.iter().zip(&batch) {
        assert_eq!(&s.envelope, e);
    }
    let again = store.append_events(&batch).await.unwrap();
    assert_eq!(again, stored, "a repeated batch stores nothing new");
    let all = store.events_for_aggregate("e1", &[], 100).await.unwrap();
    assert_eq!(all.len(), 4);
    let single = store
        .append_events(&[small_event(EventType::PodRunning, "e1")])
        .await
        .unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(store.last_seq().await.unwrap(), single[0].seq);
}

pub async fn events_for_aggregate_filters_by_type(store: S) {
    let first = store
        .append_event(&small_event(EventType::ExecutionQueued, "e1"))
        .await
        .unwrap();
    store
        .append_event(&small_event(EventType::ExecutionQueued, "e2"))
        .await
        .unwrap();
    let third = store
        .append_event(&small_event(EventType::ResultStored, "e1"))
        .await
        .unwrap();
    let all = store.events_for_aggregate("e1", &[], 100).await.unwrap();
    assert_eq!(all, vec![first.clone(), third.clone()]);
    let stored = store
        .events_for_aggregate("e1", &[EventType::ResultStored], 100)
        .await
        .unwrap();
    assert_eq!(stored, vec![third]);
    assert_eq!(
        store.events_for_aggregate("e1", &[], 1).await.unwrap(),
        vec![first]
    );
    assert!(store
        .events_for_aggregate("e9", &[], 100)
        .await
        .unwrap()
        .is_empty());
}

pub async fn offsets_never_go_backwards(store: S) {
    let t = EventType::ExecutionRequested;
    assert_eq!(store.consumer_offset("g1", t).await.unwrap(), 0);
    store.commit_offset("g1", t, 5).await.unwrap();
    assert_eq!(store.consumer_offset("g1", t).await.unwrap(), 5);
    store.commit_offset("g1", t, 3).await.unwrap();
    assert_eq!(store.consumer_offset("g1", t).await.unwrap(), 5);
    store.commit_offset("g1", t, 7).await.unwrap();
    assert_eq!(store.consumer_offset("g1", t).await.unwrap(), 7);
    assert_eq!(store.consumer_offset("g2", t).await.unwrap(), 0);
    assert_eq!(
        store
            .consumer_offset("g1", EventType::ResultStored)
            .await
            .unwrap(),
        0
    );
}
