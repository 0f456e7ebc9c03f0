//! PostgreSQL: worker leases and run ownership. Each compare-and-set is one `UPDATE … WHERE`
//! (row locks make concurrent ones take turns, and the loser sees the winner's row); a lost
//! run is settled in one transaction with the event it stores.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{OwnedRun, WorkerLease, WorkerReport, WorkerStore};
use integr8s_core::{Envelope, StoreError, StoredEvent};

use super::query::{execute, fetch_all};
use super::{classify, PostgresStore};
use crate::codec::{to_json, ts};
use crate::rows::workers::{decode_lease, decode_run, LEASE_COLUMNS, RUN_COLUMNS};

#[async_trait]
impl WorkerStore for PostgresStore {
    async fn renew_lease(
        &self,
        report: &WorkerReport,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO worker_leases (worker_id, report, started_at, renewed_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (worker_id) DO UPDATE SET report = excluded.report,
                 renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(&report.worker_id)
        .bind(to_json(report)?)
        .bind(ts(now))
        .bind(ts(expires_at));
        execute(query, &self.pool).await?;
        Ok(())
    }

    async fn drop_lease(&self, worker_id: &str) -> Result<bool, StoreError> {
        let query = sqlx::query("DELETE FROM worker_leases WHERE worker_id = $1").bind(worker_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn live_workers(&self, now: DateTime<Utc>) -> Result<Vec<WorkerLease>, StoreError> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS} FROM worker_leases WHERE expires_at > $1
             ORDER BY started_at, worker_id"
        );
        fetch_all(sqlx::query(&sql).bind(ts(now)), &self.pool, decode_lease).await
    }

    async fn prune_leases(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let query = sqlx::query("DELETE FROM worker_leases WHERE expires_at < $1").bind(ts(before));
        execute(query, &self.pool).await
    }

    async fn claim_run(&self, execution_id: &str, worker_id: &str) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE executions SET status = 'running', worker_id = $1, run_started_at = NULL,
                 updated_at = $2
             WHERE execution_id = $3 AND status = 'scheduled'",
        )
        .bind(worker_id)
        .bind(ts(integr8s_core::now()))
        .bind(execution_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn mark_run_started(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE executions SET run_started_at = $1
             WHERE execution_id = $2 AND status = 'running' AND worker_id = $3
                 AND run_started_at IS NULL",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .bind(worker_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn runs_of(&self, worker_id: &str) -> Result<Vec<OwnedRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM executions
             WHERE status = 'running' AND worker_id = $1 ORDER BY updated_at, execution_id"
        );
        fetch_all(sqlx::query(&sql).bind(worker_id), &self.pool, decode_run).await
    }

    async fn lost_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OwnedRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM executions e
             WHERE status = 'running' AND worker_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM worker_leases w
                                 WHERE w.worker_id = e.worker_id AND w.expires_at > $1)
             ORDER BY updated_at, execution_id LIMIT $2"
        );
        let query = sqlx::query(&sql).bind(ts(now)).bind(i64::from(limit));
        fetch_all(query, &self.pool, decode_run).await
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
            "UPDATE executions SET status = $1, worker_id = NULL, updated_at = $2
             WHERE execution_id = $3 AND status = 'running' AND worker_id = $4 AND {started}"
        );
        let mut tx = self.begin().await?;
        let query = sqlx::query(&sql)
            .bind(status)
            .bind(ts(integr8s_core::now()))
            .bind(&run.execution_id)
            .bind(&run.worker_id);
        if execute(query, &mut *tx).await? != 1 {
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
        let mut tx = self.begin().await?;
        let query = sqlx::query(
            "UPDATE executions SET worker_id = NULL, updated_at = $1
             WHERE execution_id = $2 AND status = 'running' AND worker_id = $3",
        )
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .bind(worker_id);
        if execute(query, &mut *tx).await? != 1 {
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
