//! A sweep deletes what is past each kind's retention in batches and keeps the rest; while one
//! sweeper holds the store's lease another one does nothing.

use std::sync::Arc;
use std::time::Duration;

use integr8s_core::event::{EventMetadata, EventPayload};
use integr8s_core::ports::{RetentionKind, Store};
use integr8s_core::Envelope;

use super::{RetentionConfig, RetentionSweeper, LEASE};

fn queued(execution_id: &str) -> Envelope {
    Envelope::new(
        EventPayload::ExecutionQueued {
            execution_id: execution_id.to_owned(),
            position_in_queue: None,
            estimated_start_time: None,
        },
        EventMetadata::new("retention-test", None),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_old_rows_in_batches_and_one_sweeper_at_a_time() {
    let sqlite = integr8s_store::SqliteStore::open("sqlite::memory:")
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    for i in 0..7 {
        store
            .append_event(&queued(&format!("old-{i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = integr8s_core::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.append_event(&queued("new")).await.unwrap();

    let config = RetentionConfig {
        batch: 3,
        ..RetentionConfig::default()
    }
    .keep(RetentionKind::Events, Some(Duration::from_millis(10)));
    let sweeper = RetentionSweeper::new(store.clone(), config.clone());
    let other = RetentionSweeper::new(store.clone(), config);

    // The other sweeper holds the lease: this one does nothing.
    let later = integr8s_core::now();
    assert!(store
        .try_lease(
            LEASE,
            &other.holder,
            later,
            later + chrono::Duration::seconds(60)
        )
        .await
        .unwrap());
    assert_eq!(sweeper.sweep(now).await.unwrap(), None);
    assert_eq!(store.events_after(&[], 0, 0).await.unwrap().len(), 8);
    store.release_lease(LEASE, &other.holder).await.unwrap();

    let pass = sweeper.sweep(now).await.unwrap().expect("lease taken");
    assert_eq!(pass.get("events"), Some(&7), "three batches of at most 3");
    let left = store.events_after(&[], 0, 0).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].envelope.execution_id(), Some("new"));
    assert_eq!(
        pass.get("executions"),
        None,
        "kinds without a retention are kept"
    );
    // The lease was given back: the other sweeper may go next.
    assert!(other.sweep(now).await.unwrap().is_some());
}
