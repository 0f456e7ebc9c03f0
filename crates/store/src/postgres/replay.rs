//! PostgreSQL: replay sessions and the event selection they replay. A running session is
//! claimed by one runner at a time (`FOR UPDATE SKIP LOCKED` plus a lease).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::replay::{
    ReplayCursor, ReplayFilter, ReplayProgress, ReplaySession, ReplayStatus, ReplayStore,
    REPLAY_CORRELATION_PREFIX,
};
use integr8s_core::{StoreError, StoredEvent};
use sqlx::{Postgres, QueryBuilder};

use super::query::{execute, fetch_all, fetch_optional, sql_limit};
use super::{classify, PostgresStore};
use crate::codec::{to_i64, to_json, to_u64, ts};
use crate::retention::purgeable_replay_statuses;
use crate::rows::events::decode_event;
use crate::rows::replay::{decode, COLUMNS};

/// Appends the `WHERE` clause selecting the events `filter` replays, after `after`.
fn push_selection(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &ReplayFilter,
    after: Option<ReplayCursor>,
) {
    // Copies published by a replay are never selected again.
    qb.push(" WHERE COALESCE(body::jsonb #>> '{metadata,correlation_id}', '') NOT LIKE ")
        .push_bind(format!("{REPLAY_CORRELATION_PREFIX}%"));
    if let Some(ids) = filter.event_ids.as_ref().filter(|v| !v.is_empty()) {
        qb.push(" AND event_id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    if let Some(id) = &filter.execution_id {
        qb.push(" AND (aggregate_id = ")
            .push_bind(id.clone())
            .push(" OR body::jsonb ->> 'execution_id' = ")
            .push_bind(id.clone())
            .push(")");
    }
    if let Some(id) = &filter.aggregate_id {
        qb.push(" AND aggregate_id = ").push_bind(id.clone());
    }
    if let Some(types) = filter.event_types.as_ref().filter(|v| !v.is_empty()) {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        qb.push(" AND event_type = ANY(").push_bind(types).push(")");
    }
    if let Some(types) = filter
        .exclude_event_types
        .as_ref()
        .filter(|v| !v.is_empty())
    {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        qb.push(" AND NOT (event_type = ANY(")
            .push_bind(types)
            .push("))");
    }
    if let Some(t) = filter.start_time {
        qb.push(" AND timestamp >= ").push_bind(ts(t));
    }
    if let Some(t) = filter.end_time {
        qb.push(" AND timestamp <= ").push_bind(ts(t));
    }
    if let Some(user) = &filter.user_id {
        qb.push(" AND user_id = ").push_bind(user.clone());
    }
    if let Some(service) = &filter.service_name {
        qb.push(" AND body::jsonb #>> '{metadata,service_name}' = ")
            .push_bind(service.clone());
    }
    if let Some(c) = after {
        qb.push(" AND (timestamp, seq) > (")
            .push_bind(ts(c.timestamp))
            .push(", ")
            .push_bind(c.seq)
            .push(")");
    }
}

#[async_trait]
impl ReplayStore for PostgresStore {
    async fn create_replay_session(&self, session: &ReplaySession) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO replay_sessions ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        let query = sqlx::query(&sql)
            .bind(&session.session_id)
            .bind(&session.replay_id)
            .bind(to_json(&session.config)?)
            .bind(session.status.as_str())
            .bind(to_i64(session.total_events, "total_events")?)
            .bind(to_i64(session.replayed_events, "replayed_events")?)
            .bind(to_i64(session.failed_events, "failed_events")?)
            .bind(to_i64(session.skipped_events, "skipped_events")?)
            .bind(ts(session.created_at))
            .bind(session.started_at.map(ts))
            .bind(session.completed_at.map(ts))
            .bind(session.last_event_at.map(ts))
            .bind(to_json(&session.errors)?)
            .bind(&session.created_by)
            .bind(session.cursor.map(|c| ts(c.timestamp)))
            .bind(session.cursor.map(|c| c.seq));
        execute(query, &self.pool).await?;
        Ok(())
    }

    async fn replay_session(&self, session_id: &str) -> Result<Option<ReplaySession>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM replay_sessions WHERE session_id = $1");
        fetch_optional(sqlx::query(&sql).bind(session_id), &self.pool, decode).await
    }

    async fn list_replay_sessions(
        &self,
        status: Option<ReplayStatus>,
        limit: u32,
    ) -> Result<Vec<ReplaySession>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM replay_sessions WHERE ($1::text IS NULL OR status = $1)
             ORDER BY created_at DESC, session_id LIMIT $2"
        );
        let query = sqlx::query(&sql)
            .bind(status.map(ReplayStatus::as_str))
            .bind(sql_limit(limit));
        fetch_all(query, &self.pool, decode).await
    }

    async fn transition_replay_session(
        &self,
        session_id: &str,
        from: &[ReplayStatus],
        to: ReplayStatus,
        total_events: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let query = sqlx::query(
            "UPDATE replay_sessions SET
                 status = $1,
                 total_events = COALESCE($2, total_events),
                 started_at = CASE WHEN $3 AND started_at IS NULL THEN $4 ELSE started_at END,
                 completed_at = CASE WHEN $5 THEN $4 ELSE completed_at END,
                 lease_until = CASE WHEN $5 THEN NULL ELSE lease_until END
             WHERE session_id = $6 AND status = ANY($7)",
        )
        .bind(to.as_str())
        .bind(
            total_events
                .map(|t| to_i64(t, "total_events"))
                .transpose()?,
        )
        .bind(to == ReplayStatus::Running)
        .bind(ts(now))
        .bind(to.is_terminal())
        .bind(session_id)
        .bind(from);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn save_replay_progress(
        &self,
        session_id: &str,
        progress: &ReplayProgress,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE replay_sessions SET replayed_events = $1, failed_events = $2,
                 skipped_events = $3, last_event_at = $4, errors = $5, cursor_ts = $6,
                 cursor_seq = $7
             WHERE session_id = $8",
        )
        .bind(to_i64(progress.replayed_events, "replayed_events")?)
        .bind(to_i64(progress.failed_events, "failed_events")?)
        .bind(to_i64(progress.skipped_events, "skipped_events")?)
        .bind(progress.last_event_at.map(ts))
        .bind(to_json(&progress.errors)?)
        .bind(progress.cursor.map(|c| ts(c.timestamp)))
        .bind(progress.cursor.map(|c| c.seq))
        .bind(session_id);
        Ok(execute(query, &self.pool).await? == 1)
    }

    async fn claim_replay_session(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ReplaySession>, StoreError> {
        let sql = format!(
            "UPDATE replay_sessions SET lease_until = $1
             WHERE session_id = (
                 SELECT session_id FROM replay_sessions
                 WHERE status = 'running' AND (lease_until IS NULL OR lease_until < $2)
                 ORDER BY started_at, session_id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql).bind(ts(lease_until)).bind(ts(now));
        fetch_optional(query, &self.pool, decode).await
    }

    async fn lease_replay_session(
        &self,
        session_id: &str,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let query =
            sqlx::query("UPDATE replay_sessions SET lease_until = $1 WHERE session_id = $2")
                .bind(lease_until.map(ts))
                .bind(session_id);
        execute(query, &self.pool).await?;
        Ok(())
    }

    async fn delete_replay_sessions_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM replay_sessions WHERE created_at < $1 AND status IN ({})",
            purgeable_replay_statuses()
        );
        let query = sqlx::query(&sql).bind(ts(cutoff));
        execute(query, &self.pool).await
    }

    async fn replay_events(
        &self,
        filter: &ReplayFilter,
        after: Option<ReplayCursor>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT seq, body FROM events");
        push_selection(&mut qb, filter, after);
        qb.push(" ORDER BY timestamp, seq LIMIT ")
            .push_bind(sql_limit(limit));
        fetch_all(qb.build(), &self.pool, decode_event).await
    }

    async fn count_replay_events(&self, filter: &ReplayFilter) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM events");
        push_selection(&mut qb, filter, None);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        to_u64(n, "count")
    }
}
