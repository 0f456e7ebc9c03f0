//! PostgreSQL: the event log (outbox and bus log) and consumer-group offsets.
//!
//! Appends take the [`Lock::EventLog`] advisory lock until their transaction commits, so an
//! event with a higher `seq` is never visible before one with a lower `seq`: a consumer tailing
//! `seq > offset` cannot skip an event that commits late.

use async_trait::async_trait;
use integr8s_core::ports::{ConsumerOffsetStore, EventStore};
use integr8s_core::{Envelope, EventType, StoreError, StoredEvent};
use sqlx::PgConnection;

use super::query::{fetch_all, fetch_one, sql_limit};
use super::{classify, lock, Lock, PostgresStore};
use crate::codec::{to_json, ts};
use crate::rows::events::decode_event;

/// Appends `event` inside the caller's transaction, which must commit (or roll back) soon: it
/// holds the event log's lock until then. An existing `event_id` is left as stored and
/// returned.
pub(crate) async fn append(
    conn: &mut PgConnection,
    event: &Envelope,
) -> Result<StoredEvent, StoreError> {
    lock(conn, Lock::EventLog, "").await?;
    let body = to_json(event)?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO events (event_id, event_type, aggregate_id, timestamp, user_id, body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING seq",
    )
    .bind(&event.event_id)
    .bind(event.event_type().as_str())
    .bind(&event.aggregate_id)
    .bind(ts(event.timestamp))
    .bind(&event.metadata.user_id)
    .bind(&body)
    .fetch_optional(&mut *conn)
    .await
    .map_err(classify)?;
    if let Some(seq) = inserted {
        return Ok(StoredEvent {
            seq,
            envelope: event.clone(),
        });
    }
    let query =
        sqlx::query("SELECT seq, body FROM events WHERE event_id = $1").bind(&event.event_id);
    fetch_one(query, conn, decode_event).await
}

/// The `event_type` condition: every type when `types` is empty.
fn types_filter(types: &[EventType]) -> Option<Vec<&'static str>> {
    (!types.is_empty()).then(|| types.iter().map(|t| t.as_str()).collect())
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append_event(&self, event: &Envelope) -> Result<StoredEvent, StoreError> {
        let mut tx = self.begin().await?;
        let stored = append(&mut tx, event).await?;
        tx.commit().await.map_err(classify)?;
        Ok(stored)
    }

    /// The whole batch in one transaction: one round of the append lock and one commit.
    async fn append_events(&self, events: &[Envelope]) -> Result<Vec<StoredEvent>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            stored.push(append(&mut tx, event).await?);
        }
        tx.commit().await.map_err(classify)?;
        Ok(stored)
    }

    /// An empty `types` means every type.
    async fn events_after(
        &self,
        types: &[EventType],
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(
            "SELECT seq, body FROM events
             WHERE seq > $1 AND ($2::text[] IS NULL OR event_type = ANY($2))
             ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(types_filter(types))
        .bind(sql_limit(limit));
        fetch_all(query, &self.pool, decode_event).await
    }

    async fn events_for_aggregate(
        &self,
        aggregate_id: &str,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(
            "SELECT seq, body FROM events
             WHERE aggregate_id = $1 AND ($2::text[] IS NULL OR event_type = ANY($2))
             ORDER BY seq LIMIT $3",
        )
        .bind(aggregate_id)
        .bind(types_filter(types))
        .bind(sql_limit(limit));
        fetch_all(query, &self.pool, decode_event).await
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }
}

#[async_trait]
impl ConsumerOffsetStore for PostgresStore {
    async fn consumer_offset(&self, group: &str, topic: EventType) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM consumer_offsets WHERE group_name = $1 AND topic = $2",
        )
        .bind(group)
        .bind(topic.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(seq.unwrap_or(0))
    }

    async fn commit_offset(
        &self,
        group: &str,
        topic: EventType,
        seq: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consumer_offsets (group_name, topic, seq, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (group_name, topic) DO UPDATE SET
                 seq = GREATEST(consumer_offsets.seq, excluded.seq),
                 updated_at = excluded.updated_at",
        )
        .bind(group)
        .bind(topic.as_str())
        .bind(seq)
        .bind(ts(integr8s_core::now()))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }
}
