//! PostgreSQL: retention, bounded deletes of old rows (statements in [`crate::retention`]) and
//! the named leases of background sweeps.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{RetentionKind, RetentionStore};
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
        let steps = statements(kind, "$1", "$2");
        let mut tx = self.begin().await?;
        let mut deleted = 0;
        for step in steps {
            let mut query = sqlx::query(&step.sql).bind(ts(cutoff));
            if step.batched {
                query = query.bind(i64::from(batch));
            }
            let done = execute(query, &mut *tx).await?;
            if step.counted {
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
