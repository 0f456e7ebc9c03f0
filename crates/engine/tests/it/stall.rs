//! Two coordinators on PostgreSQL, one of them stalled between its claim and its schedule for
//! longer than the other's `claim_timeout`: the other hands the claim back and schedules the
//! execution, and the stalled one, once it goes on, changes nothing. The stall is real: the
//! test holds the execution's row lock, so the stalled coordinator's store call waits in the
//! database, as one waiting on a slow disk or a paused process would.

use std::sync::Arc;
use std::time::Duration;

use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::event::EventType;
use integr8s_core::execution::{ExecutionStatus, Priority};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Store};
use integr8s_engine::{Coordinator, EngineConfig, EngineError};
use sqlx::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{config, eventually, submit, DEADLINE};

fn coordinator_config(claim_timeout: Duration) -> EngineConfig {
    EngineConfig {
        tick: Duration::from_millis(100),
        claim_timeout,
        ..config(1, 1)
    }
}

fn start(
    store: Arc<dyn Store>,
    bus: &Arc<dyn EventBus>,
    outbox: &Outbox,
    config: EngineConfig,
    shutdown: &CancellationToken,
) -> JoinHandle<Result<(), EngineError>> {
    let settings = EffectiveSettings::new(store.clone(), config.settings_defaults());
    let c = Coordinator::new(store, bus.clone(), outbox.clone(), config, settings);
    tokio::spawn(c.run(shutdown.clone()))
}

/// The claim of the execution's queue entry, if it is claimed.
async fn claim_of(store: &dyn Store, execution_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let far = integr8s_core::now() + chrono::Duration::days(1);
    store
        .stale_claims(far)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.execution_id == execution_id)
        .and_then(|e| e.active_since)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_stalled_past_the_claim_timeout_schedules_nothing() {
    let server = integr8s_store::testkit::PostgresServer::shared();
    let url = server.create_database().await.unwrap();
    // Each coordinator has a pool of its own, as two processes would.
    let mut pools = Vec::new();
    for _ in 0..2 {
        let pg = integr8s_store::PostgresStore::open(&url).await.unwrap();
        pg.migrate().await.unwrap();
        pools.push(Arc::new(pg));
    }
    let store: Arc<dyn Store> = pools[0].clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = pools[0].clone();
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = Outbox::new(events, bus.clone(), "engine-test");
    let id = submit(store.as_ref(), &outbox, "u1", "print(1)", Priority::Normal).await;

    // Whoever schedules the execution waits for this lock.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM executions WHERE execution_id = $1 FOR UPDATE")
        .bind(&id)
        .execute(&mut *lock)
        .await
        .unwrap();

    // The first coordinator claims the execution and stalls in its schedule; its own claim
    // timeout is long, so it never hands back the other's claims.
    let shutdown = CancellationToken::new();
    let stalled = start(
        store.clone(),
        &bus,
        &outbox,
        coordinator_config(Duration::from_secs(3600)),
        &shutdown,
    );
    let stalled_claim = eventually("the first claim", || claim_of(store.as_ref(), &id)).await;

    // The second one, with a short claim timeout, finds that claim stale and hands it back
    // (then claims it itself, and waits for the lock in its turn).
    let other_store: Arc<dyn Store> = pools[1].clone();
    let other = start(
        other_store,
        &bus,
        &outbox,
        coordinator_config(Duration::from_secs(1)),
        &shutdown,
    );
    eventually("the stalled claim handed back", || async {
        (claim_of(store.as_ref(), &id).await != Some(stalled_claim)).then_some(())
    })
    .await;
    assert_eq!(
        store.execution(&id).await.unwrap().unwrap().status,
        ExecutionStatus::Queued
    );

    // The stall ends: both go on.
    lock.commit().await.unwrap();
    eventually("the execution scheduled", || async {
        let e = store.execution(&id).await.unwrap().unwrap();
        (e.status == ExecutionStatus::Scheduled).then_some(())
    })
    .await;
    // Stopping waits for the dispatches in progress, so whatever the stalled one does after
    // its wait is done when the coordinators have stopped.
    shutdown.cancel();
    for task in [stalled, other] {
        let stopped = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("a coordinator did not stop")
            .unwrap();
        assert!(stopped.is_ok(), "{stopped:?}");
    }

    let execution = store.execution(&id).await.unwrap().unwrap();
    assert_eq!(execution.status, ExecutionStatus::Scheduled);
    assert_eq!(
        store.queue_counts().await.unwrap(),
        (0, 1),
        "the scheduled execution holds its slot"
    );
    let accepted = store
        .events_for_aggregate(&id, &[EventType::ExecutionAccepted], 10)
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1, "scheduled once");
}
