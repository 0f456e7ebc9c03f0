//! The dead-letter queue.

use super::*;
use crate::ports::dlq::{DlqFilter, DlqStatus, NewDlqMessage};
use crate::StoredEvent;

async fn stored_event(store: &S) -> StoredEvent {
    let e = sample_execution("u1", "python", Duration::zero());
    store.append_event(&requested_event(&e)).await.unwrap()
}

fn failure(group: &str, event: &StoredEvent, error: &str) -> NewDlqMessage {
    NewDlqMessage {
        group: group.to_owned(),
        event: event.clone(),
        error: error.to_owned(),
        attempts: 5,
        producer_id: "test".to_owned(),
        failed_at: crate::now(),
    }
}

pub async fn dlq_dead_letter_list_and_reopen(store: S) {
    let event = stored_event(&store).await;
    let other = stored_event(&store).await;
    let m = store
        .dead_letter(&failure("coordinator", &event, "boom"))
        .await
        .unwrap();
    assert_eq!(m.status, DlqStatus::Pending);
    assert_eq!((m.attempts, m.retry_count), (5, 0));
    assert_eq!(m.event, event);
    assert_eq!(m.original_topic, "execution_requested");
    assert_eq!(
        store.dlq_message(&m.message_id).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(store.dlq_message("missing").await.unwrap(), None);
    // The same event failing in another group is another message.
    let m2 = store
        .dead_letter(&failure("saga-orchestrator", &event, "nope"))
        .await
        .unwrap();
    assert_ne!(m2.message_id, m.message_id);
    store
        .dead_letter(&failure("coordinator", &other, "x"))
        .await
        .unwrap();

    let (all, total) = store
        .list_dlq_messages(&DlqFilter::default())
        .await
        .unwrap();
    assert_eq!((all.len(), total), (3, 3));
    let by_group = DlqFilter {
        group: Some("coordinator".to_owned()),
        limit: 1,
        ..Default::default()
    };
    let (page, total) = store.list_dlq_messages(&by_group).await.unwrap();
    assert_eq!((page.len(), total), (1, 2));
    let by_type = DlqFilter {
        event_type: Some(EventType::ResultStored),
        ..Default::default()
    };
    assert_eq!(store.list_dlq_messages(&by_type).await.unwrap().1, 0);

    // A retried message that fails again is reopened, keeping its id and retry count.
    let retried = store
        .retry_dlq_message(&m.message_id, crate::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.status, retried.retry_count),
        (DlqStatus::Retried, 1)
    );
    let again = store
        .dead_letter(&failure("coordinator", &event, "still broken"))
        .await
        .unwrap();
    assert_eq!(again.message_id, m.message_id);
    assert_eq!((again.status, again.retry_count), (DlqStatus::Pending, 1));
    assert_eq!(again.error, "still broken");
    assert_eq!(again.failed_at, m.failed_at);
    let claimed = store
        .claim_dlq_redeliveries("coordinator", crate::now(), crate::now(), 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "reopening cancels the redelivery");
}

pub async fn dlq_schedule_retry_discard_and_redeliver(store: S) {
    let event = stored_event(&store).await;
    let m = store
        .dead_letter(&failure("g1", &event, "boom"))
        .await
        .unwrap();
    let now = crate::now();
    let due = store.due_dlq_messages(now, 10).await.unwrap();
    assert_eq!(due.len(), 1, "pending messages are due for scheduling");
    assert!(store
        .schedule_dlq_retry(&m.message_id, now + Duration::seconds(60))
        .await
        .unwrap());
    assert!(!store.schedule_dlq_retry(&m.message_id, now).await.unwrap());
    assert!(store.due_dlq_messages(now, 10).await.unwrap().is_empty());
    let later = now + Duration::seconds(61);
    let due = store.due_dlq_messages(later, 10).await.unwrap();
    assert_eq!(due[0].status, DlqStatus::Scheduled);

    let retried = store
        .retry_dlq_message(&m.message_id, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.retry_count, 1);
    assert_eq!(retried.last_retried_at, Some(later));
    assert!(store
        .retry_dlq_message(&m.message_id, later)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .discard_dlq_message(&m.message_id, "x", later)
        .await
        .unwrap()
        .is_none());

    // Only the message's group gets the redelivery, once per claim.
    assert!(store
        .claim_dlq_redeliveries("g2", later, later + Duration::seconds(30), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = store
        .claim_dlq_redeliveries("g1", later, later + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event, event);
    assert!(store
        .claim_dlq_redeliveries("g1", later, later + Duration::seconds(30), 10)
        .await
        .unwrap()
        .is_empty());
    // An expired claim is handed out again.
    let expired = later + Duration::seconds(31);
    assert_eq!(
        store
            .claim_dlq_redeliveries("g1", expired, expired + Duration::seconds(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .complete_dlq_redelivery(&m.message_id, expired)
        .await
        .unwrap());
    assert!(!store
        .complete_dlq_redelivery(&m.message_id, expired)
        .await
        .unwrap());
    let done = store.dlq_message(&m.message_id).await.unwrap().unwrap();
    assert_eq!(done.redelivered_at, Some(expired));
    assert!(store
        .claim_dlq_redeliveries("g1", expired + Duration::days(1), expired, 10)
        .await
        .unwrap()
        .is_empty());

    let other = stored_event(&store).await;
    let m2 = store
        .dead_letter(&failure("g1", &other, "boom"))
        .await
        .unwrap();
    let discarded = store
        .discard_dlq_message(&m2.message_id, "manual", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(discarded.status, DlqStatus::Discarded);
    assert_eq!(discarded.discard_reason.as_deref(), Some("manual"));
    assert!(store
        .due_dlq_messages(expired, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn dlq_stats_and_purge(store: S) {
    let a = stored_event(&store).await;
    let b = stored_event(&store).await;
    let m = store.dead_letter(&failure("g1", &a, "e")).await.unwrap();
    store.dead_letter(&failure("g2", &a, "e")).await.unwrap();
    store.dead_letter(&failure("g2", &b, "e")).await.unwrap();
    store
        .discard_dlq_message(&m.message_id, "r", crate::now())
        .await
        .unwrap();
    let stats = store.dlq_stats().await.unwrap();
    assert_eq!(stats.total, 3);
    assert!(stats.by_status.contains(&(DlqStatus::Pending, 2)));
    assert!(stats.by_status.contains(&(DlqStatus::Discarded, 1)));
    assert!(stats.by_status.contains(&(DlqStatus::Retried, 0)));
    assert_eq!(
        stats.by_event_type,
        vec![(EventType::ExecutionRequested, 3)]
    );
    assert_eq!(stats.by_group[0], ("g2".to_owned(), 2));
    assert!(stats.oldest_open_at.is_some());

    assert_eq!(
        store
            .purge_dlq_before(crate::now() - Duration::days(7))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_dlq_before(crate::now() + Duration::seconds(1))
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.dlq_stats().await.unwrap().total, 0);
}
