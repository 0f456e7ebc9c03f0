//! PostgreSQL: the execution queue, pending entries ordered by aged priority and claimed into a
//! bounded number of active slots.
//!
//! A claim decides on counts of other rows (the global and per-user caps), so claims take the
//! [`Lock::QueueClaim`] advisory lock for their transaction: claimers in any number of processes
//! take turns, and each sees the slots the previous one took. Enqueues, releases and removals
//! do not wait for it. The choice itself is [`crate::queue_order`], shared with SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::store::restamp_claim;
use integr8s_core::ports::{QueueEntry, QueuePolicy, QueueStore, ScheduleClaim};
use integr8s_core::{Envelope, ExecutionStatus, Priority, StoreError, StoredEvent};
use sqlx::PgConnection;

use super::query::{execute, fetch_all};
use super::{classify, lock, Lock, PostgresStore};
use crate::codec::{parse_ts, to_u64, ts};
use crate::queue_order::{next_to_claim, position, Turn, Users};
use crate::rows::queue::{decode, COLUMNS};

async fn pending(conn: &mut PgConnection) -> Result<Vec<QueueEntry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM queue_entries WHERE active_since IS NULL");
    fetch_all(sqlx::query(&sql), conn, decode).await
}

/// Active entries per user and every user's last claim, as the claim order needs them.
async fn users(conn: &mut PgConnection) -> Result<Users, StoreError> {
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
    conn: &mut PgConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO queue_turns (user_id, turn, last_claim_at)
         VALUES ($1, (SELECT COALESCE(MAX(turn), 0) + 1 FROM queue_turns), $2)
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
impl QueueStore for PostgresStore {
    async fn enqueue(&self, entry: &QueueEntry) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO queue_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (execution_id) DO NOTHING"
        );
        let query = sqlx::query(&sql)
            .bind(&entry.execution_id)
            .bind(&entry.user_id)
            .bind(entry.priority.as_str())
            .bind(ts(entry.enqueued_at))
            .bind(entry.active_since.map(ts));
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn claim_next(
        &self,
        policy: &QueuePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueEntry>, StoreError> {
        let mut tx = self.begin().await?;
        lock(&mut tx, Lock::QueueClaim, "").await?;
        let users = users(&mut tx).await?;
        let mut candidates = pending(&mut tx).await?;
        loop {
            let Some(mut entry) = next_to_claim(candidates.clone(), &users, policy, now) else {
                return Ok(None);
            };
            let take = sqlx::query(
                "UPDATE queue_entries SET active_since = $1
                 WHERE execution_id = $2 AND active_since IS NULL",
            )
            .bind(ts(now))
            .bind(&entry.execution_id);
            if execute(take, &mut *tx).await? == 1 {
                record_turn(&mut tx, &entry.user_id, now).await?;
                tx.commit().await.map_err(classify)?;
                entry.active_since = Some(now);
                return Ok(Some(entry));
            }
            // Removed (cancelled or released) since it was read: choose among the others.
            candidates.retain(|e| e.execution_id != entry.execution_id);
        }
    }

    async fn release(&self, execution_id: &str) -> Result<bool, StoreError> {
        let query =
            sqlx::query("DELETE FROM queue_entries WHERE execution_id = $1").bind(execution_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn remove_pending(&self, execution_id: &str) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "DELETE FROM queue_entries WHERE execution_id = $1 AND active_since IS NULL",
        )
        .bind(execution_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn stale_claims(
        &self,
        claimed_before: DateTime<Utc>,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_entries
             WHERE active_since IS NOT NULL AND active_since < $1
                 AND execution_id IN (SELECT execution_id FROM executions WHERE status = 'queued')
             ORDER BY active_since, execution_id"
        );
        fetch_all(
            sqlx::query(&sql).bind(ts(claimed_before)),
            &self.pool,
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
        let mut tx = self.begin().await?;
        // The execution's row first, as the outcome's write takes it before the entry's.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM executions WHERE execution_id = $1 FOR UPDATE")
                .bind(execution_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
        // The claim is checked and consumed under the entry's row lock: a hand-back of the
        // same claim waits for this transaction and then no longer matches.
        let held = sqlx::query(
            "UPDATE queue_entries SET active_since = $1
             WHERE execution_id = $2 AND active_since = $3",
        )
        .bind(ts(restamp_claim(active_since, now)))
        .bind(execution_id)
        .bind(ts(active_since));
        if execute(held, &mut *tx).await? != 1 {
            return Ok((ScheduleClaim::ClaimLost, Vec::new()));
        }
        let mut stored = Vec::new();
        let outcome = if status.as_deref() == Some(ExecutionStatus::Queued.as_str()) {
            let schedule = sqlx::query(
                "UPDATE executions SET status = $1, updated_at = $2 WHERE execution_id = $3",
            )
            .bind(ExecutionStatus::Scheduled.as_str())
            .bind(ts(now))
            .bind(execution_id);
            execute(schedule, &mut *tx).await?;
            for event in events {
                stored.push(super::events::append(&mut tx, event).await?);
            }
            ScheduleClaim::Scheduled
        } else {
            let release =
                sqlx::query("DELETE FROM queue_entries WHERE execution_id = $1").bind(execution_id);
            execute(release, &mut *tx).await?;
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
        let query = sqlx::query(
            "UPDATE queue_entries SET active_since = NULL
             WHERE execution_id = $1 AND active_since = $2",
        )
        .bind(execution_id)
        .bind(ts(active_since));
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn queue_counts(&self) -> Result<(u64, u64), StoreError> {
        let (pending, active): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE active_since IS NULL),
                    COUNT(*) FILTER (WHERE active_since IS NOT NULL)
             FROM queue_entries",
        )
        .fetch_one(&self.pool)
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
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let entries = pending(&mut conn).await?;
        let users = users(&mut conn).await?;
        Ok(position(&entries, &users, execution_id, policy, now))
    }

    async fn set_priority(
        &self,
        execution_id: &str,
        priority: Priority,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query("UPDATE queue_entries SET priority = $1 WHERE execution_id = $2")
            .bind(priority.as_str())
            .bind(execution_id);
        Ok(execute(query, &self.pool).await? == 1)
    }
}
