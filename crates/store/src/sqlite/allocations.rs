//! Resource allocations: at most one per execution, active until released.

use async_trait::async_trait;
use integr8s_core::ports::AllocationStore;
use integr8s_core::StoreError;

use super::{classify, SqliteStore};
use crate::codec::{to_u64, ts};

#[async_trait]
impl AllocationStore for SqliteStore {
    /// Returns the execution's existing allocation id when there is one, active or released
    /// (a released allocation is not re-activated by a late, redelivered allocate).
    async fn allocate(&self, execution_id: &str, lang: &str) -> Result<String, StoreError> {
        // One statement (one round trip to the writer): the no-op update on a conflict makes
        // RETURNING yield the existing allocation's id.
        sqlx::query_scalar(
            "INSERT INTO resource_allocations
                 (allocation_id, execution_id, lang, status, allocated_at)
             VALUES (?, ?, ?, 'active', ?)
             ON CONFLICT (execution_id) DO UPDATE SET execution_id = excluded.execution_id
             RETURNING allocation_id",
        )
        .bind(integr8s_core::new_id())
        .bind(execution_id)
        .bind(lang)
        .bind(ts(integr8s_core::now()))
        .fetch_one(&self.writer)
        .await
        .map_err(classify)
    }

    async fn release_allocation(&self, execution_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE resource_allocations SET status = 'released', released_at = ?
             WHERE execution_id = ? AND status = 'active'",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn active_allocations(&self, lang: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM resource_allocations WHERE lang = ? AND status = 'active'",
        )
        .bind(lang)
        .fetch_one(&self.reader)
        .await
        .map_err(classify)?;
        to_u64(n, "allocation count")
    }
}
