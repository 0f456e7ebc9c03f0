//! The bus conformance suite for `MemoryBus` over a real SQLite event store (a fresh database
//! file per test).

use std::sync::Arc;

use integr8s_bus::MemoryBus;
use integr8s_core::ports::{BusLog, EventBus};
use integr8s_core::testsuite::store::Fixture;
use integr8s_store::SqliteStore;

async fn sqlite_event_store() -> Fixture<dyn BusLog> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    Fixture::with_guard(Arc::new(store), dir)
}

fn memory_bus(store: Arc<dyn BusLog>) -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(store))
}

integr8s_core::bus_test_suite!(store: sqlite_event_store(), bus: memory_bus);
