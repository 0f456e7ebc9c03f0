//! Executions: the outbox write of a new execution, listing, compare-and-set transitions and
//! the one-time result write.

use async_trait::async_trait;
use integr8s_core::execution::{ExecutionFilter, ExecutionResultRecord};
use integr8s_core::ports::{CreateExecution, ExecutionStore};
use integr8s_core::{Envelope, ErrorType, Execution, ExecutionStatus, StoreError, StoredEvent};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query::{fetch_all, fetch_optional, Page};
use super::{classify, placeholders, SqliteStore};
use crate::codec::{to_i64, ts};
use crate::rows::executions::{decode, COLUMNS};

async fn insert(conn: &mut SqliteConnection, e: &Execution) -> Result<(), StoreError> {
    let usage = e.resource_usage.as_ref();
    let sql = format!(
        "INSERT INTO executions ({COLUMNS}) VALUES ({})",
        placeholders(25)
    );
    sqlx::query(&sql)
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
        .bind(&e.stdin)
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    Ok(())
}

async fn by_idempotency_key(
    conn: &mut SqliteConnection,
    user_id: &str,
    key: &str,
) -> Result<Option<Execution>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM executions WHERE user_id = ? AND idempotency_key = ?");
    fetch_optional(sqlx::query(&sql).bind(user_id).bind(key), conn, decode).await
}

fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &ExecutionFilter) {
    qb.push(" WHERE 1 = 1");
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

fn status_list(statuses: &[ExecutionStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn create_execution(
        &self,
        execution: &Execution,
        requested: &Envelope,
    ) -> Result<CreateExecution, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = &execution.idempotency_key {
            if let Some(existing) = by_idempotency_key(&mut tx, &execution.user_id, key).await? {
                return Ok(CreateExecution::Existing(existing));
            }
        }
        match insert(&mut tx, execution).await {
            Ok(()) => {}
            // Another process won the race for the same key between our check and insert.
            Err(StoreError::Conflict(column)) if column == "idempotency_key" => {
                drop(tx);
                let mut conn = self.writer.acquire().await.map_err(classify)?;
                let key = execution.idempotency_key.as_deref().unwrap_or_default();
                return match by_idempotency_key(&mut conn, &execution.user_id, key).await? {
                    Some(existing) => Ok(CreateExecution::Existing(existing)),
                    None => Err(StoreError::Conflict(column)),
                };
            }
            Err(e) => return Err(e),
        }
        let stored = super::events::append(&mut tx, requested).await?;
        tx.commit().await.map_err(classify)?;
        Ok(CreateExecution::Created(execution.clone(), stored))
    }

    async fn execution(&self, execution_id: &str) -> Result<Option<Execution>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE execution_id = ?");
        fetch_optional(sqlx::query(&sql).bind(execution_id), &self.reader, decode).await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<(Vec<Execution>, u64), StoreError> {
        let page = Page {
            table: "executions",
            columns: COLUMNS,
            order_by: "created_at DESC, rowid DESC",
            limit: filter.limit,
            skip: filter.skip,
        };
        page.fetch(&self.reader, |qb| push_filter(qb, filter), decode)
            .await
    }

    async fn transition_execution(
        &self,
        execution_id: &str,
        from: &[ExecutionStatus],
        to: ExecutionStatus,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE executions SET status = ?, updated_at = ?
             WHERE execution_id = ? AND status IN ({})",
            placeholders(from.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(ts(integr8s_core::now()))
            .bind(execution_id);
        for s in status_list(from) {
            query = query.bind(s);
        }
        let done = query.execute(&self.writer).await.map_err(classify)?;
        Ok(done.rows_affected() == 1)
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
        let sql = format!(
            "UPDATE executions SET status = ?, stdout = ?, stderr = ?, exit_code = ?,
                 error_type = ?, error_message = ?, wall_seconds = ?, cpu_time_jiffies = ?,
                 clk_tck_hertz = ?, peak_memory_kb = ?, updated_at = ?
             WHERE execution_id = ? AND status IN ({})",
            placeholders(ExecutionStatus::ACTIVE.len())
        );
        let mut query = sqlx::query(&sql)
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
            .bind(ts(integr8s_core::now()))
            .bind(execution_id);
        for s in status_list(&ExecutionStatus::ACTIVE) {
            query = query.bind(s);
        }
        // One transaction: the outcome and the freed slot become visible together, and the
        // single writer is taken once instead of three times.
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut *tx).await.map_err(classify)?;
        sqlx::query("DELETE FROM queue_entries WHERE execution_id = ?")
            .bind(execution_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query(
            "UPDATE resource_allocations SET status = 'released', released_at = ?
             WHERE execution_id = ? AND status = 'active'",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let written = if done.rows_affected() == 1 {
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
        let mut tx = self.begin_write().await?;
        for table in ["queue_entries", "sagas", "resource_allocations"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE execution_id = ?"))
                .bind(execution_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        let done = sqlx::query("DELETE FROM executions WHERE execution_id = ?")
            .bind(execution_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn executions_in(
        &self,
        statuses: &[ExecutionStatus],
    ) -> Result<Vec<Execution>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM executions WHERE status IN ({}) ORDER BY created_at, rowid",
            placeholders(statuses.len())
        );
        let mut query = sqlx::query(&sql);
        for s in status_list(statuses) {
            query = query.bind(s);
        }
        fetch_all(query, &self.reader, decode).await
    }
}
