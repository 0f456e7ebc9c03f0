//! Worker leases and run ownership. Every write is one statement or one write transaction, so
//! SQLite's single writer makes each compare-and-set atomic.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{OwnedRun, WorkerLease, WorkerReport, WorkerStore};
use integr8s_core::{Envelope, StoreError, StoredEvent};

use super::query::fetch_all;
use super::{classify, SqliteStore};
use crate::codec::{to_json, ts};
use crate::rows::workers::{decode_lease, decode_run, LEASE_COLUMNS, RUN_COLUMNS};

#[async_trait]
impl WorkerStore for SqliteStore {
    async fn renew_lease(
        &self,
        report: &WorkerReport,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO worker_leases (worker_id, report, started_at, renewed_at, expires_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (worker_id) DO UPDATE SET report = excluded.report,
                 renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(&report.worker_id)
        .bind(to_json(report)?)
        .bind(ts(now))
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn drop_lease(&self, worker_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM worker_leases WHERE worker_id = ?")
            .bind(worker_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn live_workers(&self, now: DateTime<Utc>) -> Result<Vec<WorkerLease>, StoreError> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS} FROM worker_leases WHERE expires_at > ?
             ORDER BY started_at, worker_id"
        );
        fetch_all(sqlx::query(&sql).bind(ts(now)), &self.reader, decode_lease).await
    }

    async fn prune_leases(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM worker_leases WHERE expires_at < ?")
            .bind(ts(before))
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn claim_run(&self, execution_id: &str, worker_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'running', worker_id = ?, run_started_at = NULL,
                 updated_at = ?
             WHERE execution_id = ? AND status = 'scheduled'",
        )
        .bind(worker_id)
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_run_started(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET run_started_at = ?
             WHERE execution_id = ? AND status = 'running' AND worker_id = ?
                 AND run_started_at IS NULL",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .bind(worker_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn runs_of(&self, worker_id: &str) -> Result<Vec<OwnedRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM executions
             WHERE status = 'running' AND worker_id = ? ORDER BY updated_at, execution_id"
        );
        fetch_all(sqlx::query(&sql).bind(worker_id), &self.reader, decode_run).await
    }

    async fn lost_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OwnedRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM executions e
             WHERE status = 'running' AND worker_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM worker_leases w
                                 WHERE w.worker_id = e.worker_id AND w.expires_at > ?)
             ORDER BY updated_at, execution_id LIMIT ?"
        );
        let query = sqlx::query(&sql).bind(ts(now)).bind(i64::from(limit));
        fetch_all(query, &self.reader, decode_run).await
    }

    async fn settle_run(
        &self,
        run: &OwnedRun,
        event: &Envelope,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let (status, started) = if run.started {
            ("running", "run_started_at IS NOT NULL")
        } else {
            ("scheduled", "run_started_at IS NULL")
        };
        let sql = format!(
            "UPDATE executions SET status = ?, worker_id = NULL, updated_at = ?
             WHERE execution_id = ? AND status = 'running' AND worker_id = ? AND {started}"
        );
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&sql)
            .bind(status)
            .bind(ts(integr8s_core::now()))
            .bind(&run.execution_id)
            .bind(&run.worker_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let stored = super::events::append(&mut tx, event).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(stored))
    }

    async fn report_run(
        &self,
        execution_id: &str,
        worker_id: &str,
        events: &[Envelope],
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE executions SET worker_id = NULL, updated_at = ?
             WHERE execution_id = ? AND status = 'running' AND worker_id = ?",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .bind(worker_id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            stored.push(super::events::append(&mut tx, event).await?);
        }
        tx.commit().await.map_err(classify)?;
        Ok(Some(stored))
    }
}
