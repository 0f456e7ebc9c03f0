//! The store conformance suite against PostgreSQL (one server for this test binary, a fresh
//! database per test), plus what only a database shared by several processes has to get right:
//! separate pools (as separate processes would have) racing for queue entries, idempotency keys
//! and the event log's order, and a stopped server reported as `Unavailable`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use integr8s_core::ports::{
    CreateExecution, EventStore, ExecutionStore, QueueEntry, QueuePolicy, QueueStore, Store,
    UserStore,
};
use integr8s_core::testsuite::store::{requested_event, sample_execution, small_event, Fixture};
use integr8s_core::{EventType, Priority, StoreError};
use integr8s_store::testkit::PostgresServer;
use integr8s_store::PostgresStore;

/// Generous bound for the waits of these tests; never a performance threshold.
const DEADLINE: Duration = Duration::from_secs(60);

async fn fresh_database() -> String {
    PostgresServer::shared()
        .create_database()
        .await
        .expect("create database")
}

async fn open(url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

async fn fresh_store() -> Fixture<dyn Store> {
    let url = fresh_database().await;
    Fixture::new(Arc::new(open(&url).await))
}

mod suite {
    integr8s_core::store_test_suite!(super::fresh_store());
}

/// Two stores on one database: two pools of their own, as two processes would have.
async fn two_stores() -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = fresh_database().await;
    let (a, b) = tokio::join!(open(&url), open(&url));
    (Arc::new(a), Arc::new(b))
}

fn entry(user: &str, i: i64) -> QueueEntry {
    QueueEntry {
        execution_id: integr8s_core::new_id(),
        user_id: user.to_owned(),
        priority: Priority::Normal,
        enqueued_at: Utc::now() - chrono::Duration::milliseconds(i),
        active_since: None,
    }
}

/// Claims from `stores`, four tasks per store, until each gets nothing.
async fn claim_everywhere(stores: &[Arc<PostgresStore>], policy: QueuePolicy) -> Vec<QueueEntry> {
    let mut tasks = Vec::new();
    for store in stores {
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(e) = store.claim_next(&policy, Utc::now()).await.expect("claim") {
                    mine.push(e);
                }
                mine
            }));
        }
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("claimer"));
    }
    claimed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_of_two_processes_never_share_an_entry_and_keep_the_caps() {
    let (a, b) = two_stores().await;
    let mut all = HashSet::new();
    for i in 0..40 {
        let e = entry(&format!("user-{}", i % 10), i);
        a.enqueue(&e).await.unwrap();
        all.insert(e.execution_id);
    }

    let capped = QueuePolicy {
        max_active: 6,
        max_active_per_user: 1,
        ageing_seconds: 0,
    };
    let first = claim_everywhere(&[a.clone(), b.clone()], capped).await;
    assert_eq!(first.len(), 6, "max_active holds across processes");
    let mut per_user: HashMap<&str, u32> = HashMap::new();
    for e in &first {
        *per_user.entry(e.user_id.as_str()).or_default() += 1;
    }
    assert!(
        per_user.values().all(|n| *n == 1),
        "max_active_per_user holds across processes: {per_user:?}"
    );
    assert_eq!(b.queue_counts().await.unwrap(), (34, 6));

    let open_policy = QueuePolicy {
        max_active: 1000,
        max_active_per_user: 1000,
        ageing_seconds: 0,
    };
    let rest = claim_everywhere(&[a.clone(), b.clone()], open_policy).await;
    let claimed: Vec<String> = first
        .into_iter()
        .chain(rest)
        .map(|e| e.execution_id)
        .collect();
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(unique.len(), claimed.len(), "an entry was claimed twice");
    assert_eq!(unique, all, "every entry was claimed");
    assert_eq!(a.queue_counts().await.unwrap(), (0, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_creates_one_execution_across_processes() {
    let (a, b) = two_stores().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut e = sample_execution("racer", "python", chrono::Duration::zero());
            e.idempotency_key = Some("same-key".to_owned());
            store.create_execution(&e, &requested_event(&e)).await
        }));
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.expect("task").expect("create") {
            CreateExecution::Created(e, _) => created.push(e.execution_id),
            CreateExecution::Existing(e) => existing.push(e.execution_id),
        }
    }
    assert_eq!(created.len(), 1, "exactly one submission creates");
    assert!(existing.iter().all(|id| *id == created[0]));
    let requested = a
        .events_after(&[EventType::ExecutionRequested], 0, 0)
        .await
        .unwrap();
    assert_eq!(requested.len(), 1, "one request event in the outbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_never_skips_an_event_committed_late() {
    let (a, b) = two_stores().await;
    let writers = 6;
    let per_writer = 25;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..per_writer {
                // Alternate plain appends with the outbox write of an execution, whose
                // transaction does more work before it commits.
                let e =
                    sample_execution(&format!("writer-{w}"), "python", chrono::Duration::zero());
                let event = requested_event(&e);
                store.create_execution(&e, &event).await.expect("create");
                ids.push(event.event_id);
                let event = small_event(EventType::ExecutionQueued, &e.execution_id);
                store.append_event(&event).await.expect("append");
                ids.push(event.event_id);
            }
            ids
        }));
    }
    let reader = {
        let store = b.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            let deadline = tokio::time::Instant::now() + DEADLINE;
            while seen.len() < writers * per_writer * 2 && tokio::time::Instant::now() < deadline {
                for e in store.events_after(&[], after, 50).await.expect("tail") {
                    assert!(e.seq > after, "events come in seq order");
                    after = e.seq;
                    seen.push(e.envelope.event_id);
                }
            }
            seen
        })
    };
    let mut written = HashSet::new();
    for t in tasks {
        written.extend(t.await.expect("writer"));
    }
    let seen = reader.await.expect("reader");
    let seen_set: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), seen_set.len(), "an event was read twice");
    let missed: Vec<&String> = written.difference(&seen_set).collect();
    assert!(
        missed.is_empty(),
        "the tailing reader skipped {} events",
        missed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_once() {
    let url = fresh_database().await;
    let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.last_seq().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_scheme_opens_postgres() {
    let url = fresh_database().await;
    let store = integr8s_store::open(&url).await.expect("open postgres://");
    store.migrate().await.expect("migrate");
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.close().await;

    let alias = url.replacen("postgres://", "postgresql://", 1);
    let store = integr8s_store::open(&alias)
        .await
        .expect("open postgresql://");
    assert_eq!(store.count_users().await.unwrap(), 0);

    let Err(err) = integr8s_store::open("mysql://root@127.0.0.1/x").await else {
        panic!("an unknown scheme must be refused");
    };
    assert!(
        err.to_string().contains("unsupported database url"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_until_it_returns() {
    let mut server = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .expect("join")
        .expect("start server");
    let url = server.create_database().await.expect("create database");
    let store = open(&url).await;
    assert_eq!(store.count_users().await.unwrap(), 0);

    let mut server = tokio::task::spawn_blocking(move || {
        server.stop().expect("stop server");
        server
    })
    .await
    .expect("join");

    let err = tokio::time::timeout(DEADLINE, store.count_users())
        .await
        .expect("the store answers")
        .expect_err("the server is down");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = tokio::time::timeout(DEADLINE, PostgresStore::open(&url))
        .await
        .expect("open answers")
        .expect_err("the server is down");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    // The same pool serves again once the server is back: no restart of the store needed.
    let _server = tokio::task::spawn_blocking(move || {
        server.restart().expect("restart server");
        server
    })
    .await
    .expect("join");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match store.count_users().await {
            Ok(n) => break assert_eq!(n, 0),
            Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                eprintln!("still unavailable: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover: {e:?}"),
        }
    }
}
