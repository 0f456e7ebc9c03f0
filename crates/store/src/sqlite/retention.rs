//! Retention: bounded deletes of old rows (statements in [`crate::retention`]) and the named
//! leases of background sweeps.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{RetentionKind, RetentionStore};
use integr8s_core::StoreError;

use super::{classify, SqliteStore};
use crate::codec::ts;
use crate::retention::{statements, TAKE_LEASE};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_before(
        &self,
        kind: RetentionKind,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let steps = statements(kind, "?1", "?2");
        let mut tx = self.begin_write().await?;
        let mut deleted = 0;
        for step in steps {
            let mut query = sqlx::query(&step.sql).bind(ts(cutoff));
            if step.batched {
                query = query.bind(i64::from(batch));
            }
            let done = query.execute(&mut *tx).await.map_err(classify)?;
            if step.counted {
                deleted += done.rows_affected();
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
            .replace("{n}", "?1")
            .replace("{h}", "?2")
            .replace("{u}", "?3")
            .replace("{now}", "?4");
        let done = sqlx::query(&sql)
            .bind(name)
            .bind(holder)
            .bind(ts(until))
            .bind(ts(now))
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sweep_leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
