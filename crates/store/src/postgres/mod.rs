//! The PostgreSQL adapter: one pool of connections shared by every process's tasks, safe with
//! any number of processes on the same database.
//!
//! Where the SQLite adapter relies on its single writer, this one uses PostgreSQL's own tools:
//! unique constraints with `ON CONFLICT` for idempotency, compare-and-set `UPDATE … WHERE`,
//! `FOR UPDATE SKIP LOCKED` for the lease-based claims (deliveries, redeliveries, replays), and
//! transaction-scoped advisory locks where a decision reads more than the rows it writes (the
//! queue's caps, per-user notification throttling, the event log's commit order).

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
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a caller waits for a connection before the store reports itself unavailable (the API
/// then answers 503): long enough for a busy pool, short enough for a client waiting on a
/// stopped database.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 16;

/// Keys of the transaction-scoped advisory locks (first half of the two-key form; the second
/// half names the row group, e.g. a hash of the user id).
#[derive(Clone, Copy)]
#[repr(i32)]
pub(crate) enum Lock {
    /// Appends to the event log: held until commit, so `seq` order is commit order.
    EventLog = 0x1e0e_0001,
    /// Queue claims: caps are decided on counts of other rows.
    QueueClaim = 0x1e0e_0002,
    /// Notification creation per user: throttling counts the user's recent rows.
    UserNotifications = 0x1e0e_0003,
}

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Opens `url` (`postgres://user:password@host:port/database?…`, any option libpq-style
    /// URLs accept). Connects once to fail early on a wrong URL or an unreachable server. Does
    /// not run migrations; call [`PostgresStore::migrate`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Other(format!(
                "invalid postgres url {}: {e}",
                crate::redact_url(url)
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(Self { pool })
    }

    /// Applies the embedded migrations that are not applied yet (under sqlx's advisory lock, so
    /// concurrent migrations from several processes apply each step once).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => classify(e),
            other => StoreError::Other(format!("migration failed: {other}")),
        })
    }

    /// Closes the pool, waiting for checked-out connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(classify)
    }
}

#[async_trait::async_trait]
impl crate::DatabaseStore for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        PostgresStore::migrate(self).await
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }
}

/// Takes the advisory lock `(lock, hashtext(key))` until the end of the current transaction.
pub(crate) async fn lock(conn: &mut PgConnection, lock: Lock, key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(lock as i32)
        .bind(key)
        .execute(conn)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Classifies a database error once, as the SQLite adapter does: unique violations are
/// conflicts naming the column; a lost or refused connection, a server shutting down, lock
/// contention and pool exhaustion are `Unavailable`; undecodable rows are `Corrupt`.
pub(crate) fn classify(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                let detail = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(PgDatabaseError::detail);
                let column = detail
                    .and_then(conflicting_column)
                    .unwrap_or_else(|| db.constraint().unwrap_or("unique").to_owned());
                return StoreError::Conflict(column);
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if is_transient(&code) {
                StoreError::Unavailable(format!("{} ({code})", db.message()))
            } else {
                StoreError::Other(db.message().to_owned())
            }
        }
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("connection pool timed out".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("connection pool closed".into()),
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("i/o error: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("tls error: {e}")),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("connection worker crashed".into()),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// SQLSTATEs that say "try again later" rather than "this request is wrong": connection
/// exceptions (08), serialization failures and deadlocks (40001, 40P01), insufficient resources
/// (53), lock not available (55P03), operator intervention such as a shutdown (57P).
fn is_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "40001" | "40P01" | "55P03")
}

/// "Key (user_id, idempotency_key)=(u, k) already exists." → "idempotency_key"; for a
/// composite key the last column.
fn conflicting_column(detail: &str) -> Option<String> {
    let columns = detail.strip_prefix("Key (")?.split_once(")=")?.0;
    columns.rsplit(", ").next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicting_column_is_the_last_key_column() {
        assert_eq!(
            conflicting_column("Key (email)=(a@example.com) already exists.").as_deref(),
            Some("email")
        );
        assert_eq!(
            conflicting_column("Key (user_id, idempotency_key)=(u, k) already exists.").as_deref(),
            Some("idempotency_key")
        );
        assert_eq!(conflicting_column("something else"), None);
    }

    #[test]
    fn shutdowns_and_lost_connections_are_transient() {
        for code in ["08006", "57P01", "40001", "40P01", "53300"] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23503", "42P01", "22P02"] {
            assert!(!is_transient(code), "{code}");
        }
    }
}
