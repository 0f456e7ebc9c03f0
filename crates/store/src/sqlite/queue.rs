//! The execution queue: pending entries ordered by aged priority, claimed into a bounded number
//! of active slots.
//!
//! `claim_next` runs in one write transaction (SQLite has a single writer), reads the pending
//! entries and active counts, and chooses in Rust with [`effective_rank`].

use std::cmp::Ordering;
use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::{QueueEntry, QueuePolicy, QueueStore};
use integr8s_core::{Priority, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;

use super::codec::{col, col_enum, col_opt_ts, col_ts, to_u64, ts};
use super::query::fetch_all;
use super::{classify, SqliteStore};

const COLUMNS: &str = "execution_id, user_id, priority, enqueued_at, active_since";

fn decode(row: &SqliteRow) -> Result<QueueEntry, StoreError> {
    Ok(QueueEntry {
        execution_id: col(row, "execution_id")?,
        user_id: col(row, "user_id")?,
        priority: col_enum(row, "priority", Priority::parse)?,
        enqueued_at: col_ts(row, "enqueued_at")?,
        active_since: col_opt_ts(row, "active_since")?,
    })
}

/// The rank an entry competes with at `now`: its priority's rank minus one per full
/// `ageing_seconds` waited (lower is better; may go below zero). No ageing when
/// `ageing_seconds` is 0.
pub(crate) fn effective_rank(entry: &QueueEntry, policy: &QueuePolicy, now: DateTime<Utc>) -> i64 {
    let base = entry.priority.rank();
    if policy.ageing_seconds == 0 {
        return base;
    }
    let waited = (now - entry.enqueued_at).num_seconds().max(0);
    base - waited / i64::from(policy.ageing_seconds)
}

/// The claim order: better effective rank first, then the oldest, then the id for a total order.
fn order(a: &QueueEntry, b: &QueueEntry, policy: &QueuePolicy, now: DateTime<Utc>) -> Ordering {
    effective_rank(a, policy, now)
        .cmp(&effective_rank(b, policy, now))
        .then(a.enqueued_at.cmp(&b.enqueued_at))
        .then_with(|| a.execution_id.cmp(&b.execution_id))
}

async fn pending(conn: &mut SqliteConnection) -> Result<Vec<QueueEntry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM queue_entries WHERE active_since IS NULL");
    fetch_all(sqlx::query(&sql), conn, decode).await
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, entry: &QueueEntry) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO queue_entries ({COLUMNS}) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (execution_id) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&entry.execution_id)
            .bind(&entry.user_id)
            .bind(entry.priority.as_str())
            .bind(ts(entry.enqueued_at))
            .bind(entry.active_since.map(ts))
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_next(
        &self,
        policy: &QueuePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        let mut tx = self.begin_write().await?;
        let active_rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT user_id, COUNT(*) FROM queue_entries
             WHERE active_since IS NOT NULL GROUP BY user_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        let active_total: i64 = active_rows.iter().map(|(_, n)| n).sum();
        if active_total >= i64::from(policy.max_active) {
            return Ok(None);
        }
        let per_user: HashMap<String, i64> = active_rows.into_iter().collect();
        let cap = i64::from(policy.max_active_per_user);
        let best = pending(&mut tx)
            .await?
            .into_iter()
            .filter(|e| per_user.get(&e.user_id).copied().unwrap_or(0) < cap)
            .min_by(|a, b| order(a, b, policy, now));
        let Some(mut entry) = best else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE queue_entries SET active_since = ?
             WHERE execution_id = ? AND active_since IS NULL",
        )
        .bind(ts(now))
        .bind(&entry.execution_id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        entry.active_since = Some(now);
        Ok(Some(entry))
    }

    async fn release(&self, execution_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM queue_entries WHERE execution_id = ?")
            .bind(execution_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_pending(&self, execution_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM queue_entries WHERE execution_id = ? AND active_since IS NULL",
        )
        .bind(execution_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn queue_counts(&self) -> Result<(u64, u64), StoreError> {
        let (pending, active): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(active_since IS NULL), 0), COALESCE(SUM(active_since IS NOT NULL), 0)
             FROM queue_entries",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(classify)?;
        Ok((
            to_u64(pending, "pending count")?,
            to_u64(active, "active count")?,
        ))
    }

    /// `None` when the execution has no pending entry (unknown, or already active).
    async fn queue_position(
        &self,
        execution_id: &str,
        policy: &QueuePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(classify)?;
        let entries = pending(&mut conn).await?;
        let Some(target) = entries.iter().find(|e| e.execution_id == execution_id) else {
            return Ok(None);
        };
        let ahead = entries
            .iter()
            .filter(|e| order(e, target, policy, now) == Ordering::Less)
            .count();
        Ok(Some(ahead as u64))
    }

    async fn set_priority(
        &self,
        execution_id: &str,
        priority: Priority,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE queue_entries SET priority = ? WHERE execution_id = ?")
            .bind(priority.as_str())
            .bind(execution_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }
}
