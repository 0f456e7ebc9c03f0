//! SQLite: replay sessions and the event selection they replay.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use integr8s_core::ports::replay::{
    ReplayCursor, ReplayFilter, ReplayProgress, ReplaySession, ReplayStatus, ReplayStore,
    REPLAY_CORRELATION_PREFIX,
};
use integr8s_core::{StoreError, StoredEvent};
use sqlx::Row;

use super::query::sql_limit;
use super::query::{fetch_all, fetch_optional, Statement};
use super::{classify, placeholders, SqliteStore};
use crate::codec::{to_i64, to_json, to_u64, ts};
use crate::retention::purgeable_replay_statuses;
use crate::rows::events::decode_event;
use crate::rows::replay::{decode, COLUMNS};

/// A `WHERE` clause over `events` with its bound values, in order.
struct EventSelection {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl EventSelection {
    fn new(filter: &ReplayFilter, after: Option<ReplayCursor>) -> Self {
        // Copies published by a replay are never selected again.
        let mut s = Self {
            clauses: vec![
                "COALESCE(json_extract(body, '$.metadata.correlation_id'), '') NOT LIKE ?"
                    .to_owned(),
            ],
            binds: vec![Bind::Text(format!("{REPLAY_CORRELATION_PREFIX}%"))],
        };
        if let Some(ids) = filter.event_ids.as_ref().filter(|v| !v.is_empty()) {
            s.clauses
                .push(format!("event_id IN ({})", placeholders(ids.len())));
            s.binds.extend(ids.iter().cloned().map(Bind::Text));
        }
        if let Some(id) = &filter.execution_id {
            s.clauses
                .push("(aggregate_id = ? OR json_extract(body, '$.execution_id') = ?)".to_owned());
            s.binds.push(Bind::Text(id.clone()));
            s.binds.push(Bind::Text(id.clone()));
        }
        if let Some(id) = &filter.aggregate_id {
            s.text("aggregate_id = ?", id);
        }
        if let Some(types) = filter.event_types.as_ref().filter(|v| !v.is_empty()) {
            s.clauses
                .push(format!("event_type IN ({})", placeholders(types.len())));
            s.binds
                .extend(types.iter().map(|t| Bind::Text(t.as_str().to_owned())));
        }
        if let Some(types) = filter
            .exclude_event_types
            .as_ref()
            .filter(|v| !v.is_empty())
        {
            s.clauses
                .push(format!("event_type NOT IN ({})", placeholders(types.len())));
            s.binds
                .extend(types.iter().map(|t| Bind::Text(t.as_str().to_owned())));
        }
        if let Some(t) = filter.start_time {
            s.text("timestamp >= ?", &ts(t));
        }
        if let Some(t) = filter.end_time {
            s.text("timestamp <= ?", &ts(t));
        }
        if let Some(user) = &filter.user_id {
            s.text("user_id = ?", user);
        }
        if let Some(service) = &filter.service_name {
            s.text("json_extract(body, '$.metadata.service_name') = ?", service);
        }
        if let Some(c) = after {
            s.clauses
                .push("(timestamp > ? OR (timestamp = ? AND seq > ?))".to_owned());
            s.binds.push(Bind::Text(ts(c.timestamp)));
            s.binds.push(Bind::Text(ts(c.timestamp)));
            s.binds.push(Bind::Int(c.seq));
        }
        s
    }

    fn text(&mut self, clause: &str, value: &str) {
        self.clauses.push(clause.to_owned());
        self.binds.push(Bind::Text(value.to_owned()));
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind<'q>(&'q self, mut query: Statement<'q>) -> Statement<'q> {
        for b in &self.binds {
            query = match b {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn create_replay_session(&self, session: &ReplaySession) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO replay_sessions ({COLUMNS}) VALUES ({})",
            placeholders(16)
        ))
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
        .bind(session.cursor.map(|c| c.seq))
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn replay_session(&self, session_id: &str) -> Result<Option<ReplaySession>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM replay_sessions WHERE session_id = ?");
        fetch_optional(sqlx::query(&sql).bind(session_id), &self.reader, decode).await
    }

    async fn list_replay_sessions(
        &self,
        status: Option<ReplayStatus>,
        limit: u32,
    ) -> Result<Vec<ReplaySession>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM replay_sessions WHERE (? IS NULL OR status = ?)
             ORDER BY created_at DESC, session_id LIMIT ?"
        );
        let query = sqlx::query(&sql)
            .bind(status.map(ReplayStatus::as_str))
            .bind(status.map(ReplayStatus::as_str))
            .bind(sql_limit(limit));
        fetch_all(query, &self.reader, decode).await
    }

    async fn transition_replay_session(
        &self,
        session_id: &str,
        from: &[ReplayStatus],
        to: ReplayStatus,
        total_events: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE replay_sessions SET
                 status = ?,
                 total_events = COALESCE(?, total_events),
                 started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END,
                 completed_at = CASE WHEN ? THEN ? ELSE completed_at END,
                 lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
             WHERE session_id = ? AND status IN ({})",
            placeholders(from.len())
        );
        let now = ts(now);
        let mut query = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(
                total_events
                    .map(|t| to_i64(t, "total_events"))
                    .transpose()?,
            )
            .bind(to == ReplayStatus::Running)
            .bind(&now)
            .bind(to.is_terminal())
            .bind(&now)
            .bind(to.is_terminal())
            .bind(session_id);
        for s in from {
            query = query.bind(s.as_str());
        }
        let done = query.execute(&self.writer).await.map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn save_replay_progress(
        &self,
        session_id: &str,
        progress: &ReplayProgress,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE replay_sessions SET replayed_events = ?, failed_events = ?,
                 skipped_events = ?, last_event_at = ?, errors = ?, cursor_ts = ?, cursor_seq = ?
             WHERE session_id = ?",
        )
        .bind(to_i64(progress.replayed_events, "replayed_events")?)
        .bind(to_i64(progress.failed_events, "failed_events")?)
        .bind(to_i64(progress.skipped_events, "skipped_events")?)
        .bind(progress.last_event_at.map(ts))
        .bind(to_json(&progress.errors)?)
        .bind(progress.cursor.map(|c| ts(c.timestamp)))
        .bind(progress.cursor.map(|c| c.seq))
        .bind(session_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_replay_session(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ReplaySession>, StoreError> {
        let sql = format!(
            "UPDATE replay_sessions SET lease_until = ?
             WHERE session_id = (
                 SELECT session_id FROM replay_sessions
                 WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?)
                 ORDER BY started_at, session_id LIMIT 1)
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&sql).bind(ts(lease_until)).bind(ts(now));
        fetch_optional(query, &self.writer, decode).await
    }

    async fn lease_replay_session(
        &self,
        session_id: &str,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE replay_sessions SET lease_until = ? WHERE session_id = ?")
            .bind(lease_until.map(ts))
            .bind(session_id)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_replay_sessions_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM replay_sessions WHERE created_at < ? AND status IN ({})",
            purgeable_replay_statuses()
        );
        let done = sqlx::query(&sql)
            .bind(ts(cutoff))
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn replay_events(
        &self,
        filter: &ReplayFilter,
        after: Option<ReplayCursor>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let selection = EventSelection::new(filter, after);
        let sql = format!(
            "SELECT seq, body FROM events {} ORDER BY timestamp, seq LIMIT ?",
            selection.where_sql()
        );
        let query = selection.bind(sqlx::query(&sql)).bind(sql_limit(limit));
        fetch_all(query, &self.reader, decode_event).await
    }

    async fn count_replay_events(&self, filter: &ReplayFilter) -> Result<u64, StoreError> {
        let selection = EventSelection::new(filter, None);
        let sql = format!("SELECT COUNT(*) FROM events {}", selection.where_sql());
        let row = selection
            .bind(sqlx::query(&sql))
            .fetch_one(&self.reader)
            .await
            .map_err(classify)?;
        let n: i64 = row.try_get(0).map_err(classify)?;
        to_u64(n, "count")
    }
}
