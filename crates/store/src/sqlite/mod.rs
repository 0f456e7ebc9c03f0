//! The SQLite adapter: one database file (or an in-memory database) behind two pools.
//!
//! SQLite allows one writer at a time. Every write goes through a one-connection writer pool, so
//! writers of this process queue in FIFO order instead of spinning in SQLite's busy handler;
//! reads use a separate pool and, under WAL, never wait for the writer. Other processes sharing
//! the file are still serialised by SQLite's lock (with a busy timeout).

mod admin_events;
mod admin_users;
mod allocations;
mod dlq;
mod events;
mod executions;
mod notification_deliveries;
mod notifications;
mod query;
mod queue;
mod ratelimit;
mod replay;
mod retention;
mod sagas;
mod scripts;
mod system_settings;
mod user_settings;
mod users;
mod workers;

use std::str::FromStr;
use std::time::Duration;

use integr8s_core::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
const READ_CONNECTIONS: u32 = 4;

/// The SQLite store. Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens `url_or_path`: `sqlite://path/to/file.db`, `sqlite:path`, a plain file path, or
    /// `sqlite::memory:` (a private in-memory database on a single connection). A missing file
    /// is created. Does not run migrations; call [`SqliteStore::migrate`].
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        let options = connect_options(url_or_path)?;
        if is_memory(url_or_path) {
            // Every connection to an in-memory database would be a different database: keep
            // exactly one, forever.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(classify)?;
            return Ok(Self {
                writer: pool.clone(),
                reader: pool,
            });
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(classify)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(Self { writer, reader })
    }

    /// Applies the embedded migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => classify(e),
            other => StoreError::Other(format!("migration failed: {other}")),
        })
    }

    /// Closes both pools, waiting for checked-out connections to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Starts a write transaction holding SQLite's write lock from the first statement, so a
    /// transaction that reads before it writes cannot fail to upgrade its lock.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)
    }
}

#[async_trait::async_trait]
impl crate::DatabaseStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        SqliteStore::migrate(self).await
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}

fn is_memory(url: &str) -> bool {
    matches!(url, "sqlite::memory:" | "sqlite://:memory:" | ":memory:")
        || url.contains("mode=memory")
}

fn connect_options(url_or_path: &str) -> Result<SqliteConnectOptions, StoreError> {
    let options = if url_or_path == ":memory:" {
        SqliteConnectOptions::from_str("sqlite::memory:")
    } else if url_or_path.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url_or_path)
    } else {
        Ok(SqliteConnectOptions::new().filename(url_or_path))
    }
    .map_err(|e| StoreError::Other(format!("invalid sqlite url {url_or_path:?}: {e}")))?;
    Ok(options.foreign_keys(true).busy_timeout(BUSY_TIMEOUT))
}

/// Classifies a database error once: unique violations are conflicts naming the column, lock
/// contention and pool exhaustion are `Unavailable`, undecodable rows are `Corrupt`.
pub(crate) fn classify(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return StoreError::Conflict(conflicting_column(db.message()));
            }
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            match primary {
                // SQLITE_BUSY, SQLITE_LOCKED
                Some(5) | Some(6) => StoreError::Unavailable(db.message().to_owned()),
                _ => StoreError::Other(db.message().to_owned()),
            }
        }
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("connection pool timed out".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("connection pool closed".into()),
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("i/o error: {e}")),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("sqlite worker crashed".into()),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// "UNIQUE constraint failed: users.email" → "email"; for a composite key the last column.
fn conflicting_column(message: &str) -> String {
    message
        .rsplit([',', ' '])
        .find(|part| !part.is_empty())
        .and_then(|qualified| qualified.rsplit('.').next())
        .unwrap_or(message)
        .to_owned()
}

/// `?, ?, ?` with `n` placeholders.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicting_column_is_the_last_qualified_name() {
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: users.email"),
            "email"
        );
        assert_eq!(
            conflicting_column(
                "UNIQUE constraint failed: executions.user_id, executions.idempotency_key"
            ),
            "idempotency_key"
        );
    }

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_memory("sqlite::memory:"));
        assert!(is_memory(":memory:"));
        assert!(!is_memory("sqlite://data/integr8s.db"));
    }
}
