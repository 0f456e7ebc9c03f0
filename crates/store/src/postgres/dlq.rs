//! PostgreSQL: the dead-letter queue. Redeliveries are claimed with `FOR UPDATE SKIP LOCKED`,
//! so consumers of one group in several processes never take the same message at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::dlq::{
    DlqFilter, DlqMessage, DlqStats, DlqStatus, DlqStore, NewDlqMessage,
};
use integr8s_core::{EventType, StoreError};
use sqlx::{Postgres, QueryBuilder};

use super::query::{execute, fetch_all, fetch_one, fetch_optional, sql_limit, Page};
use super::{classify, PostgresStore};
use crate::codec::{parse_ts, to_json, to_u64, ts};
use crate::rows::dlq::{decode, COLUMNS};

fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &DlqFilter) {
    qb.push(" WHERE TRUE");
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(event_type) = filter.event_type {
        qb.push(" AND event_type = ").push_bind(event_type.as_str());
    }
    if let Some(group) = &filter.group {
        qb.push(" AND group_name = ").push_bind(group.clone());
    }
}

fn parse_event_type(s: &str) -> Result<EventType, StoreError> {
    EventType::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown event type {s:?}")))
}

impl PostgresStore {
    /// `(value, count)` for each value of `column` in the queue, most frequent first.
    async fn dlq_counts_by(&self, column: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT {column}, COUNT(*) AS n FROM dlq_messages GROUP BY {column}
             ORDER BY n DESC, {column}"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(value, n)| Ok((value, to_u64(n, "count")?)))
            .collect()
    }
}

#[async_trait]
impl DlqStore for PostgresStore {
    async fn dead_letter(&self, message: &NewDlqMessage) -> Result<DlqMessage, StoreError> {
        let env = &message.event.envelope;
        let now = ts(integr8s_core::now());
        let sql = format!(
            "INSERT INTO dlq_messages (message_id, group_name, event_id, event_seq, event_type,
                 event_body, original_topic, error, attempts, retry_count, status, producer_id,
                 failed_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 'pending', $10, $11, $12, $13)
             ON CONFLICT (group_name, event_id) DO UPDATE SET
                 error = excluded.error,
                 attempts = excluded.attempts,
                 status = 'pending',
                 producer_id = excluded.producer_id,
                 updated_at = excluded.updated_at,
                 next_retry_at = NULL,
                 redeliver = FALSE,
                 claimed_until = NULL,
                 discarded_at = NULL,
                 discard_reason = NULL
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(integr8s_core::new_id())
            .bind(&message.group)
            .bind(&env.event_id)
            .bind(message.event.seq)
            .bind(env.event_type().as_str())
            .bind(to_json(env)?)
            .bind(env.event_type().as_str())
            .bind(&message.error)
            .bind(i64::from(message.attempts))
            .bind(&message.producer_id)
            .bind(ts(message.failed_at))
            .bind(&now)
            .bind(&now);
        fetch_one(query, &self.pool, decode).await
    }

    async fn dlq_message(&self, message_id: &str) -> Result<Option<DlqMessage>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM dlq_messages WHERE message_id = $1");
        fetch_optional(sqlx::query(&sql).bind(message_id), &self.pool, decode).await
    }

    async fn list_dlq_messages(
        &self,
        filter: &DlqFilter,
    ) -> Result<(Vec<DlqMessage>, u64), StoreError> {
        let page = Page {
            table: "dlq_messages",
            columns: COLUMNS,
            order_by: "created_at DESC, message_id",
            limit: filter.limit,
            skip: filter.offset,
        };
        page.fetch(&self.pool, |qb| push_filter(qb, filter), decode)
            .await
    }

    async fn schedule_dlq_retry(
        &self,
        message_id: &str,
        next_retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE dlq_messages SET status = 'scheduled', next_retry_at = $1, updated_at = $2
             WHERE message_id = $3 AND status = 'pending'",
        )
        .bind(ts(next_retry_at))
        .bind(ts(integr8s_core::now()))
        .bind(message_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn due_dlq_messages(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DlqMessage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dlq_messages
             WHERE status = 'pending' OR (status = 'scheduled' AND next_retry_at <= $1)
             ORDER BY created_at, message_id LIMIT $2"
        );
        let query = sqlx::query(&sql).bind(ts(now)).bind(sql_limit(limit));
        fetch_all(query, &self.pool, decode).await
    }

    async fn retry_dlq_message(
        &self,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DlqMessage>, StoreError> {
        let sql = format!(
            "UPDATE dlq_messages SET status = 'retried', retry_count = retry_count + 1,
                 redeliver = TRUE, claimed_until = NULL, next_retry_at = NULL,
                 last_retried_at = $1, updated_at = $1
             WHERE message_id = $2 AND status IN ('pending', 'scheduled')
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql).bind(ts(now)).bind(message_id);
        fetch_optional(query, &self.pool, decode).await
    }

    async fn discard_dlq_message(
        &self,
        message_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DlqMessage>, StoreError> {
        let sql = format!(
            "UPDATE dlq_messages SET status = 'discarded', discard_reason = $1,
                 discarded_at = $2, updated_at = $2, next_retry_at = NULL
             WHERE message_id = $3 AND status IN ('pending', 'scheduled')
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(reason)
            .bind(ts(now))
            .bind(message_id);
        fetch_optional(query, &self.pool, decode).await
    }

    async fn claim_dlq_redeliveries(
        &self,
        group: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DlqMessage>, StoreError> {
        let sql = format!(
            "UPDATE dlq_messages SET claimed_until = $1
             WHERE message_id IN (
                 SELECT message_id FROM dlq_messages
                 WHERE group_name = $2 AND redeliver AND status = 'retried'
                   AND (claimed_until IS NULL OR claimed_until < $3)
                 ORDER BY last_retried_at, message_id LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(ts(claim_until))
            .bind(group)
            .bind(ts(now))
            .bind(sql_limit(limit));
        let mut messages = fetch_all(query, &self.pool, decode).await?;
        messages.sort_by(|a, b| {
            (a.last_retried_at, &a.message_id).cmp(&(b.last_retried_at, &b.message_id))
        });
        Ok(messages)
    }

    async fn complete_dlq_redelivery(
        &self,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE dlq_messages SET redeliver = FALSE, claimed_until = NULL,
                 redelivered_at = $1, updated_at = $1
             WHERE message_id = $2 AND redeliver AND status = 'retried'",
        )
        .bind(ts(now))
        .bind(message_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn purge_dlq_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let query = sqlx::query("DELETE FROM dlq_messages WHERE created_at < $1").bind(ts(cutoff));
        execute(query, &self.pool).await
    }

    async fn dlq_stats(&self) -> Result<DlqStats, StoreError> {
        let mut stats = DlqStats::default();
        let by_status = self.dlq_counts_by("status").await?;
        for status in DlqStatus::ALL {
            let n = by_status
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            stats.total += n;
            stats.by_status.push((status, n));
        }
        for (t, n) in self.dlq_counts_by("event_type").await? {
            stats.by_event_type.push((parse_event_type(&t)?, n));
        }
        stats.by_group = self.dlq_counts_by("group_name").await?;
        let oldest: Option<String> = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM dlq_messages WHERE status IN ('pending', 'scheduled')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        stats.oldest_open_at = oldest.map(|s| parse_ts(&s)).transpose()?;
        Ok(stats)
    }
}
