//! PostgreSQL: event queries for administration, with filtered newest-first pages, statistics,
//! and deletion into the archive. The log itself (append, tailing, offsets) lives in
//! `events.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::admin::{Counts, EventCursor, EventQuery, EventQueryStore, EventStats};
use integr8s_core::{StoreError, StoredEvent};
use sqlx::{Postgres, QueryBuilder};

use super::query::{execute, fetch_all, fetch_optional, sql_limit};
use super::{classify, PostgresStore};
use crate::codec::{like_pattern, to_u64, ts};
use crate::rows::events::decode_event;

const SERVICE: &str = "(body::jsonb #>> '{metadata,service_name}')";

fn push_query(qb: &mut QueryBuilder<'_, Postgres>, query: &EventQuery) {
    qb.push(" WHERE TRUE");
    if !query.event_types.is_empty() {
        let types: Vec<&str> = query.event_types.iter().map(|t| t.as_str()).collect();
        qb.push(" AND event_type = ANY(").push_bind(types).push(")");
    }
    if let Some(id) = &query.aggregate_id {
        qb.push(" AND aggregate_id = ").push_bind(id.clone());
    }
    if let Some(id) = &query.user_id {
        qb.push(" AND user_id = ").push_bind(id.clone());
    }
    if let Some(service) = &query.service_name {
        qb.push(format!(" AND {SERVICE} = "))
            .push_bind(service.clone());
    }
    if let Some(start) = query.start_time {
        qb.push(" AND timestamp >= ").push_bind(ts(start));
    }
    if let Some(end) = query.end_time {
        qb.push(" AND timestamp <= ").push_bind(ts(end));
    }
    // ILIKE: SQLite's LIKE ignores ASCII case, and searches behave the same on both.
    if let Some(text) = query.search_text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = like_pattern(text);
        qb.push(" AND (");
        for (i, column) in ["event_type", "aggregate_id", "user_id", "body"]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push(format!("{column} ILIKE "))
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        qb.push(")");
    }
}

impl PostgresStore {
    /// `SELECT <key>, COUNT(*) … GROUP BY <key>` over the window, as (key, count) pairs.
    async fn grouped(
        &self,
        key: &str,
        since: &str,
        user_id: Option<&str>,
        tail: &str,
    ) -> Result<Counts, StoreError> {
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n FROM events
             WHERE timestamp >= $1 AND ($2::text IS NULL OR user_id = $2) AND {key} IS NOT NULL
             GROUP BY k {tail}"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
            .bind(since)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter()
            .map(|(k, n)| Ok((k, to_u64(n, "event count")?)))
            .collect()
    }
}

#[async_trait]
impl EventQueryStore for PostgresStore {
    async fn query_events(
        &self,
        query: &EventQuery,
        after: Option<&EventCursor>,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT seq, body FROM events");
        push_query(&mut qb, query);
        if let Some(cursor) = after {
            qb.push(" AND (timestamp, seq) < (")
                .push_bind(ts(cursor.timestamp))
                .push(", ")
                .push_bind(cursor.seq)
                .push(")");
        }
        qb.push(" ORDER BY timestamp DESC, seq DESC LIMIT ")
            .push_bind(sql_limit(limit))
            .push(" OFFSET ")
            .push_bind(i64::from(skip));
        fetch_all(qb.build(), &self.pool, decode_event).await
    }

    async fn count_events(&self, query: &EventQuery) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM events");
        push_query(&mut qb, query);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        to_u64(n, "event count")
    }

    async fn event_by_id(&self, event_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let query = sqlx::query("SELECT seq, body FROM events WHERE event_id = $1").bind(event_id);
        fetch_optional(query, &self.pool, decode_event).await
    }

    async fn event_stats(
        &self,
        since: DateTime<Utc>,
        user_id: Option<&str>,
    ) -> Result<EventStats, StoreError> {
        let since_ts = ts(since);
        let (total, errors): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                    COUNT(*) FILTER (WHERE event_type LIKE '%failed%'
                                     OR event_type LIKE '%error%'
                                     OR event_type LIKE '%timeout%')
             FROM events WHERE timestamp >= $1 AND ($2::text IS NULL OR user_id = $2)",
        )
        .bind(&since_ts)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        let by_count = "ORDER BY n DESC, k LIMIT 10";
        let events_by_type = self
            .grouped("event_type", &since_ts, user_id, by_count)
            .await?;
        let events_by_hour = self
            .grouped("substr(timestamp, 1, 13)", &since_ts, user_id, "ORDER BY k")
            .await?
            .into_iter()
            .map(|(hour, n)| (format!("{}:00", hour.replacen('T', " ", 1)), n))
            .collect();
        let events_by_service = self
            .grouped(SERVICE, &since_ts, user_id, "ORDER BY n DESC, k")
            .await?;
        let top_users = self
            .grouped("user_id", &since_ts, user_id, by_count)
            .await?;
        let avg: Option<f64> = sqlx::query_scalar(
            "SELECT AVG(wall_seconds) FROM executions
             WHERE created_at >= $1 AND status = 'completed' AND wall_seconds IS NOT NULL
               AND ($2::text IS NULL OR user_id = $2)",
        )
        .bind(&since_ts)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        let total = to_u64(total, "event count")?;
        let round2 = |x: f64| (x * 100.0).round() / 100.0;
        let error_rate = if total == 0 {
            0.0
        } else {
            round2(errors as f64 / total as f64 * 100.0)
        };
        Ok(EventStats {
            total_events: total,
            events_by_type,
            events_by_hour,
            events_by_service,
            top_users,
            error_rate,
            avg_processing_time: round2(avg.unwrap_or(0.0)),
        })
    }

    async fn archive_and_delete_event(
        &self,
        event_id: &str,
        deleted_by: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let archive = sqlx::query(
            "INSERT INTO events_archive
                 (event_id, event_type, aggregate_id, timestamp, user_id, body, deleted_at,
                  deleted_by)
             SELECT event_id, event_type, aggregate_id, timestamp, user_id, body, $1, $2
             FROM events WHERE event_id = $3
             ON CONFLICT (event_id) DO UPDATE SET
                 event_type = excluded.event_type, aggregate_id = excluded.aggregate_id,
                 timestamp = excluded.timestamp, user_id = excluded.user_id,
                 body = excluded.body, deleted_at = excluded.deleted_at,
                 deleted_by = excluded.deleted_by",
        )
        .bind(ts(integr8s_core::now()))
        .bind(deleted_by)
        .bind(event_id);
        execute(archive, &mut *tx).await?;
        let delete = sqlx::query("DELETE FROM events WHERE event_id = $1").bind(event_id);
        let deleted = execute(delete, &mut *tx).await? == 1;
        tx.commit().await.map_err(classify)?;
        Ok(deleted)
    }

    async fn archived_event_count(&self, event_id: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events_archive WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        to_u64(n, "archive count")
    }
}
