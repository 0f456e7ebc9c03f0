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
