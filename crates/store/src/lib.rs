//! Store adapters of integr8s: implementations of the `integr8s_core::ports::store` role traits.
//!
//! One module per database dialect; today SQLite (`sqlite`). A PostgreSQL adapter belongs in a
//! sibling module with its own migrations under `migrations/postgres/`.

mod sqlite;

pub use sqlite::SqliteStore;
