//! The execution queue: pending entries ordered by aged priority, claimed into a bounded number
//! of active slots.
//!
//! `claim_next` runs in one write transaction (SQLite has a single writer), reads the pending
//! entries and active counts, and chooses in Rust with [`crate::queue_order`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::store::restamp_claim;
use integr8s_core::ports::{QueueEntry, QueuePolicy, QueueStore, ScheduleClaim};
use integr8s_core::{Envelope, ExecutionStatus, Priority, StoreError, StoredEvent};
use sqlx::SqliteConnection;

use super::query::fetch_all;
use super::{classify, SqliteStore};
use crate::codec::{parse_ts, to_u64, ts};
use crate::queue_order::{next_to_claim, position, Turn, Users};
use crate::rows::queue::{decode, COLUMNS};

async fn pending(conn: &mut SqliteConnection) -> Result<Vec<QueueEntry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM queue_entries WHERE active_since IS NULL");
    fetch_all(sqlx::query(&sql), conn, decode).await
}

/// Active entries per user and every user's last claim, as the claim order needs them.
async fn users(conn: &mut SqliteConnection) -> Result<Users, StoreError> {
    let active: Vec<(String, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(*) FROM queue_entries
         WHERE active_since IS NOT NULL GROUP BY user_id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT user_id, turn, last_claim_at FROM queue_turns")
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
    let mut turns = std::collections::HashMap::with_capacity(rows.len());
    for (user_id, seq, at) in rows {
        turns.insert(
            user_id,
            Turn {
                seq,
                at: parse_ts(&at)?,
            },
        );
    }
    Ok(Users {
        active: active.into_iter().collect(),
        turns,
    })
}

/// Records a claim of `user_id` at `now`: the user's turn becomes the latest.
async fn record_turn(
    conn: &mut SqliteConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO queue_turns (user_id, turn, last_claim_at)
         VALUES (?, (SELECT COALESCE(MAX(turn), 0) + 1 FROM queue_turns), ?)
         ON CONFLICT (user_id) DO UPDATE
         SET turn = excluded.turn, last_claim_at = excluded.last_claim_at",
    )
    .bind(user_id)
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(())
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
        // Nothing pending (the usual answer to the dispatch round after a claim): no write
        // transaction, which would hold the single writer for nothing. An entry enqueued after
        // this read is dispatched by the round that follows its enqueue.
        let any_pending: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM queue_entries WHERE active_since IS NULL LIMIT 1")
                .fetch_optional(&self.reader)
                .await
                .map_err(classify)?;
        if any_pending.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin_write().await?;
        let users = users(&mut tx).await?;
        let pending = pending(&mut tx).await?;
        let Some(mut entry) = next_to_claim(pending, &users, policy, now) else {
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
        record_turn(&mut tx, &entry.user_id, now).await?;
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

    async fn stale_claims(
        &self,
        claimed_before: DateTime<Utc>,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_entries
             WHERE active_since IS NOT NULL AND active_since < ?
                 AND execution_id IN (SELECT execution_id FROM executions WHERE status = 'queued')
             ORDER BY active_since, execution_id"
        );
        fetch_all(
            sqlx::query(&sql).bind(ts(claimed_before)),
            &self.reader,
            decode,
        )
        .await
    }

    async fn schedule_claimed_with_events(
        &self,
        execution_id: &str,
        active_since: DateTime<Utc>,
        events: &[Envelope],
    ) -> Result<(ScheduleClaim, Vec<StoredEvent>), StoreError> {
        let now = integr8s_core::now();
        // One write transaction: SQLite's single writer keeps a hand-back of the claim from
        // landing between the check and the schedule.
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "UPDATE queue_entries SET active_since = ?
             WHERE execution_id = ? AND active_since = ?",
        )
        .bind(ts(restamp_claim(active_since, now)))
        .bind(execution_id)
        .bind(ts(active_since))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if held.rows_affected() != 1 {
            return Ok((ScheduleClaim::ClaimLost, Vec::new()));
        }
        let scheduled = sqlx::query(
            "UPDATE executions SET status = ?, updated_at = ?
             WHERE execution_id = ? AND status = ?",
        )
        .bind(ExecutionStatus::Scheduled.as_str())
        .bind(ts(now))
        .bind(execution_id)
        .bind(ExecutionStatus::Queued.as_str())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let mut stored = Vec::new();
        let outcome = if scheduled.rows_affected() == 1 {
            for event in events {
                stored.push(super::events::append(&mut tx, event).await?);
            }
            ScheduleClaim::Scheduled
        } else {
            sqlx::query("DELETE FROM queue_entries WHERE execution_id = ?")
                .bind(execution_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            ScheduleClaim::NotQueued
        };
        tx.commit().await.map_err(classify)?;
        Ok((outcome, stored))
    }

    async fn requeue_claim(
        &self,
        execution_id: &str,
        active_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE queue_entries SET active_since = NULL
             WHERE execution_id = ? AND active_since = ?",
        )
        .bind(execution_id)
        .bind(ts(active_since))
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
        let users = users(&mut conn).await?;
        Ok(position(&entries, &users, execution_id, policy, now))
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
