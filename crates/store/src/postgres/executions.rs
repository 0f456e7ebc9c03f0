//! PostgreSQL: the outbox write of a new execution, listing, compare-and-set transitions and the
//! one-time result write.

use async_trait::async_trait;
use integr8s_core::execution::{ExecutionFilter, ExecutionResultRecord};
use integr8s_core::ports::{CreateExecution, ExecutionStore};
use integr8s_core::{Envelope, ErrorType, Execution, ExecutionStatus, StoreError, StoredEvent};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::query::{execute, fetch_all, fetch_optional, Page};
use super::{classify, PostgresStore};
use crate::codec::{to_i64, ts};
use crate::rows::executions::{decode, COLUMNS};

/// Inserts `e` unless the user already has an execution with its idempotency key. Returns
/// whether it was inserted.
async fn insert(conn: &mut PgConnection, e: &Execution) -> Result<bool, StoreError> {
    let usage = e.resource_usage.as_ref();
    let sql = format!(
        "INSERT INTO executions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING"
    );
    let query = sqlx::query(&sql)
        .bind(&e.execution_id)
        .bind(&e.user_id)
        .bind(&e.script)
        .bind(&e.lang)
        .bind(&e.lang_version)
        .bind(e.status.as_str())
        .bind(e.priority.as_str())
        .bind(to_i64(e.limits.timeout_seconds, "timeout_seconds")?)
        .bind(to_i64(e.limits.memory_bytes, "memory_bytes")?)
        .bind(to_i64(e.limits.max_processes, "max_processes")?)
        .bind(to_i64(e.limits.max_output_bytes, "max_output_bytes")?)
        .bind(&e.stdout)
        .bind(&e.stderr)
        .bind(e.exit_code)
        .bind(e.error_type.map(ErrorType::as_str))
        .bind(&e.error_message)
        .bind(usage.map(|u| u.execution_time_wall_seconds))
        .bind(usage.map(|u| u.cpu_time_jiffies))
        .bind(usage.map(|u| u.clk_tck_hertz))
        .bind(usage.map(|u| u.peak_memory_kb))
        .bind(&e.idempotency_key)
        .bind(ts(e.created_at))
        .bind(ts(e.updated_at))
        .bind(
            e.limits
                .cpu_time_ms
                .map(|v| to_i64(v, "cpu_time_ms"))
                .transpose()?,
        )
        .bind(&e.stdin);
    Ok(execute(query, conn).await? == 1)
}

async fn by_idempotency_key(
    conn: &mut PgConnection,
    user_id: &str,
    key: &str,
) -> Result<Option<Execution>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM executions WHERE user_id = $1 AND idempotency_key = $2");
    fetch_optional(sqlx::query(&sql).bind(user_id).bind(key), conn, decode).await
}

fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &ExecutionFilter) {
    qb.push(" WHERE TRUE");
    if let Some(user_id) = &filter.user_id {
        qb.push(" AND user_id = ").push_bind(user_id.clone());
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(priority) = filter.priority {
        qb.push(" AND priority = ").push_bind(priority.as_str());
    }
    if let Some(lang) = &filter.lang {
        qb.push(" AND lang = ").push_bind(lang.clone());
    }
    if let Some(start) = filter.start_time {
        qb.push(" AND updated_at >= ").push_bind(ts(start));
    }
    if let Some(end) = filter.end_time {
        qb.push(" AND updated_at <= ").push_bind(ts(end));
    }
}

pub(crate) fn status_list(statuses: &[ExecutionStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl ExecutionStore for PostgresStore {
    async fn create_execution(
        &self,
        execution: &Execution,
        requested: &Envelope,
    ) -> Result<CreateExecution, StoreError> {
        let mut tx = self.begin().await?;
        // A concurrent submission with the same key waits on the unique index until the first
        // commits, then inserts nothing and finds the committed execution.
        if !insert(&mut tx, execution).await? {
            let key = execution.idempotency_key.as_deref().unwrap_or_default();
            return match by_idempotency_key(&mut tx, &execution.user_id, key).await? {
                Some(existing) => Ok(CreateExecution::Existing(existing)),
                None => Err(StoreError::Conflict("idempotency_key".into())),
            };
        }
        let stored = super::events::append(&mut tx, requested).await?;
        tx.commit().await.map_err(classify)?;
        Ok(CreateExecution::Created(execution.clone(), stored))
    }

    async fn execution(&self, execution_id: &str) -> Result<Option<Execution>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE execution_id = $1");
        fetch_optional(sqlx::query(&sql).bind(execution_id), &self.pool, decode).await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<(Vec<Execution>, u64), StoreError> {
        let page = Page {
            table: "executions",
            columns: COLUMNS,
            order_by: "created_at DESC, row_seq DESC",
            limit: filter.limit,
            skip: filter.skip,
        };
        page.fetch(&self.pool, |qb| push_filter(qb, filter), decode)
            .await
    }

    async fn transition_execution(
        &self,
        execution_id: &str,
        from: &[ExecutionStatus],
        to: ExecutionStatus,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE executions SET status = $1, updated_at = $2
             WHERE execution_id = $3 AND status = ANY($4)",
        )
        .bind(to.as_str())
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .bind(status_list(from));
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn finish_execution_with_events(
        &self,
        execution_id: &str,
        result: &ExecutionResultRecord,
        events: &[Envelope],
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        if !result.status.is_terminal() {
            return Err(StoreError::Other(format!(
                "finish_execution with non-terminal status {}",
                result.status.as_str()
            )));
        }
        let usage = result.resource_usage.as_ref();
        let now = ts(integr8s_core::now());
        let write = sqlx::query(
            "UPDATE executions SET status = $1, stdout = $2, stderr = $3, exit_code = $4,
                 error_type = $5, error_message = $6, wall_seconds = $7, cpu_time_jiffies = $8,
                 clk_tck_hertz = $9, peak_memory_kb = $10, updated_at = $11
             WHERE execution_id = $12 AND status = ANY($13)",
        )
        .bind(result.status.as_str())
        .bind(&result.stdout)
        .bind(&result.stderr)
        .bind(result.exit_code)
        .bind(result.error_type.map(ErrorType::as_str))
        .bind(&result.error_message)
        .bind(usage.map(|u| u.execution_time_wall_seconds))
        .bind(usage.map(|u| u.cpu_time_jiffies))
        .bind(usage.map(|u| u.clk_tck_hertz))
        .bind(usage.map(|u| u.peak_memory_kb))
        .bind(&now)
        .bind(execution_id)
        .bind(status_list(&ExecutionStatus::ACTIVE));
        // One transaction: the outcome and the freed slot become visible together.
        let mut tx = self.begin().await?;
        let written = execute(write, &mut *tx).await? == 1;
        let release =
            sqlx::query("DELETE FROM queue_entries WHERE execution_id = $1").bind(execution_id);
        execute(release, &mut *tx).await?;
        let free = sqlx::query(
            "UPDATE resource_allocations SET status = 'released', released_at = $1
             WHERE execution_id = $2 AND status = 'active'",
        )
        .bind(&now)
        .bind(execution_id);
        execute(free, &mut *tx).await?;
        let written = if written {
            let mut stored = Vec::with_capacity(events.len());
            for event in events {
                stored.push(super::events::append(&mut tx, event).await?);
            }
            Some(stored)
        } else {
            None
        };
        tx.commit().await.map_err(classify)?;
        Ok(written)
    }

    async fn delete_execution(&self, execution_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        for table in ["queue_entries", "sagas", "resource_allocations"] {
            let sql = format!("DELETE FROM {table} WHERE execution_id = $1");
            execute(sqlx::query(&sql).bind(execution_id), &mut *tx).await?;
        }
        let query =
            sqlx::query("DELETE FROM executions WHERE execution_id = $1").bind(execution_id);
        let deleted = execute(query, &mut *tx).await? == 1;
        tx.commit().await.map_err(classify)?;
        Ok(deleted)
    }

    async fn executions_in(
        &self,
        statuses: &[ExecutionStatus],
    ) -> Result<Vec<Execution>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM executions WHERE status = ANY($1) ORDER BY created_at, row_seq"
        );
        let query = sqlx::query(&sql).bind(status_list(statuses));
        fetch_all(query, &self.pool, decode).await
    }
}
