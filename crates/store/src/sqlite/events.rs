//! The event log (outbox and bus log) and consumer-group offsets.

use async_trait::async_trait;
use integr8s_core::ports::{ConsumerOffsetStore, EventStore};
use integr8s_core::{Envelope, EventType, StoreError, StoredEvent};
use sqlx::{Row, Sqlite, SqliteConnection};

use super::query::sql_limit;
use super::query::{fetch_all, fetch_one};
use super::{classify, placeholders, SqliteStore};
use crate::codec::{to_json, ts};
use crate::rows::events::decode_event;

/// Appends `event` on `conn` (inside the caller's transaction, if any). An existing `event_id`
/// is left as stored and returned.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    event: &Envelope,
) -> Result<StoredEvent, StoreError> {
    let body = to_json(event)?;
    let inserted = sqlx::query(
        "INSERT INTO events (event_id, event_type, aggregate_id, timestamp, user_id, body)
         VALUES (?, ?, ?, ?, ?, ?)
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
    if let Some(row) = inserted {
        let seq: i64 = row.try_get(0).map_err(classify)?;
        return Ok(StoredEvent {
            seq,
            envelope: event.clone(),
        });
    }
    let query =
        sqlx::query("SELECT seq, body FROM events WHERE event_id = ?").bind(&event.event_id);
    fetch_one(query, conn, decode_event).await
}

/// Appends `events` in order with one multi-row statement; events whose `event_id` exists are
/// left as stored and returned.
async fn append_all(
    conn: &mut SqliteConnection,
    events: &[Envelope],
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = vec!["(?, ?, ?, ?, ?, ?)"; events.len()].join(", ");
    let sql = format!(
        "INSERT INTO events (event_id, event_type, aggregate_id, timestamp, user_id, body)
         VALUES {rows}
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id, seq"
    );
    let mut query = sqlx::query(&sql);
    for event in events {
        query = query
            .bind(&event.event_id)
            .bind(event.event_type().as_str())
            .bind(&event.aggregate_id)
            .bind(ts(event.timestamp))
            .bind(&event.metadata.user_id)
            .bind(to_json(event)?);
    }
    let inserted = query.fetch_all(&mut *conn).await.map_err(classify)?;
    let mut seqs = std::collections::HashMap::with_capacity(inserted.len());
    for row in &inserted {
        let id: String = row.try_get(0).map_err(classify)?;
        let seq: i64 = row.try_get(1).map_err(classify)?;
        seqs.insert(id, seq);
    }
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        match seqs.get(&event.event_id) {
            Some(&seq) => stored.push(StoredEvent {
                seq,
                envelope: event.clone(),
            }),
            None => stored.push(append(conn, event).await?),
        }
    }
    Ok(stored)
}

impl SqliteStore {
    /// `SELECT seq, body FROM events WHERE <condition> [AND event_type IN types] ORDER BY seq`,
    /// at most `limit` (0: all); `condition` has one `?`, bound to `value`. An empty `types`
    /// means every type.
    async fn events_where<V>(
        &self,
        condition: &str,
        value: V,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>
    where
        V: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + 'static,
    {
        let type_filter = if types.is_empty() {
            String::new()
        } else {
            format!("AND event_type IN ({})", placeholders(types.len()))
        };
        let sql = format!(
            "SELECT seq, body FROM events WHERE {condition} {type_filter} ORDER BY seq LIMIT ?"
        );
        let mut query = sqlx::query(&sql).bind(value);
        for t in types {
            query = query.bind(t.as_str());
        }
        fetch_all(query.bind(sql_limit(limit)), &self.reader, decode_event).await
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_event(&self, event: &Envelope) -> Result<StoredEvent, StoreError> {
        let mut conn = self.writer.acquire().await.map_err(classify)?;
        append(&mut conn, event).await
    }

    /// One statement for the whole batch (a single event takes the single-row path).
    async fn append_events(&self, events: &[Envelope]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conn = self.writer.acquire().await.map_err(classify)?;
        match events {
            [] => Ok(Vec::new()),
            [event] => Ok(vec![append(&mut conn, event).await?]),
            _ => append_all(&mut conn, events).await,
        }
    }

    /// An empty `types` means every type.
    async fn events_after(
        &self,
        types: &[EventType],
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_where("seq > ?", after, types, limit).await
    }

    async fn events_for_aggregate(
        &self,
        aggregate_id: &str,
        types: &[EventType],
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_where("aggregate_id = ?", aggregate_id.to_owned(), types, limit)
            .await
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.reader)
            .await
            .map_err(classify)
    }
}

#[async_trait]
impl ConsumerOffsetStore for SqliteStore {
    async fn consumer_offset(&self, group: &str, topic: EventType) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM consumer_offsets WHERE group_name = ? AND topic = ?",
        )
        .bind(group)
        .bind(topic.as_str())
        .fetch_optional(&self.reader)
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
            "INSERT INTO consumer_offsets (group_name, topic, seq, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (group_name, topic) DO UPDATE SET
                 seq = MAX(consumer_offsets.seq, excluded.seq),
                 updated_at = excluded.updated_at",
        )
        .bind(group)
        .bind(topic.as_str())
        .bind(seq)
        .bind(ts(integr8s_core::now()))
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }
}
