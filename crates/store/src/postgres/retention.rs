//! PostgreSQL: retention, bounded deletes of old rows (statements in [`crate::retention`]) and
//! the named leases of background sweeps.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{ReplayStore, RetentionKind, RetentionStore};
use integr8s_core::StoreError;

use super::query::execute;
use super::{classify, PostgresStore};
use crate::codec::ts;
use crate::retention::{statements, TAKE_LEASE};

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn purge_before(
        &self,
        kind: RetentionKind,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let Some(steps) = statements(kind, "$1", "$2") else {
            return self.delete_replay_sessions_before(cutoff).await;
        };
        let mut tx = self.begin().await?;
        let mut deleted = 0;
        for (counted, sql) in steps {
            // The statements without a batch (`{b}`) do not take the second parameter.
            let query = if sql.contains("$2") {
                sqlx::query(&sql).bind(ts(cutoff)).bind(i64::from(batch))
            } else {
                sqlx::query(&sql).bind(ts(cutoff))
            };
            let done = execute(query, &mut *tx).await?;
            if counted {
                deleted += done;
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(deleted)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = TAKE_LEASE
            .replace("{n}", "$1")
            .replace("{h}", "$2")
            .replace("{u}", "$3")
            .replace("{now}", "$4");
        let query = sqlx::query(&sql)
            .bind(name)
            .bind(holder)
            .bind(ts(until))
            .bind(ts(now));
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM sweep_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder);
        execute(query, &self.pool).await?;
        Ok(())
    }
}
