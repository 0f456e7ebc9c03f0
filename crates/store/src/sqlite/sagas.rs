//! Sagas: one per (execution, saga name), with their step log; terminal sagas are frozen.

use async_trait::async_trait;
use integr8s_core::ports::{SagaFilter, SagaStore};
use integr8s_core::saga::{Saga, SagaState};
use integr8s_core::{Envelope, StoreError, StoredEvent};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query::{fetch_one, fetch_optional, Page};
use super::{classify, placeholders, SqliteStore};
use crate::codec::{to_json, ts};
use crate::rows::sagas::{decode, COLUMNS};

fn terminal_states() -> Vec<&'static str> {
    SagaState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(SagaState::as_str)
        .collect()
}

fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &SagaFilter) {
    qb.push(" WHERE 1 = 1");
    if let Some(state) = filter.state {
        qb.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(execution_id) = &filter.execution_id {
        qb.push(" AND execution_id = ")
            .push_bind(execution_id.clone());
    }
    if let Some(user_id) = &filter.user_id {
        qb.push(" AND user_id = ").push_bind(user_id.clone());
    }
}

/// The saga's update, refused for a terminal saga: `NotFound` for an unknown saga, `Conflict`
/// for a terminal one (a terminal saga never leaves its state, so the look-up after a refused
/// update reads what refused it, inside or outside a transaction).
async fn update(conn: &mut SqliteConnection, saga: &Saga) -> Result<(), StoreError> {
    let terminal = terminal_states();
    let sql = format!(
        "UPDATE sagas SET state = ?, current_step = ?, completed_steps = ?,
             compensated_steps = ?, context = ?, error_message = ?, retry_count = ?,
             updated_at = ?, completed_at = ?
         WHERE saga_id = ? AND state NOT IN ({})",
        placeholders(terminal.len())
    );
    let mut query = sqlx::query(&sql)
        .bind(saga.state.as_str())
        .bind(&saga.current_step)
        .bind(to_json(&saga.completed_steps)?)
        .bind(to_json(&saga.compensated_steps)?)
        .bind(to_json(&saga.context)?)
        .bind(&saga.error_message)
        .bind(saga.retry_count)
        .bind(ts(saga.updated_at))
        .bind(saga.completed_at.map(ts))
        .bind(&saga.saga_id);
    for s in &terminal {
        query = query.bind(*s);
    }
    let done = query.execute(&mut *conn).await.map_err(classify)?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM sagas WHERE saga_id = ?")
        .bind(&saga.saga_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(classify)?;
    match state {
        None => Err(StoreError::NotFound(format!("saga {}", saga.saga_id))),
        Some(state) => Err(StoreError::Conflict(format!(
            "saga {} is {state}",
            saga.saga_id
        ))),
    }
}

impl SqliteStore {
    async fn saga_where(&self, column: &str, value: &str) -> Result<Option<Saga>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM sagas WHERE {column} = ? ORDER BY created_at LIMIT 1");
        fetch_optional(sqlx::query(&sql).bind(value), &self.reader, decode).await
    }
}

#[async_trait]
impl SagaStore for SqliteStore {
    async fn get_or_create_saga(&self, saga: &Saga) -> Result<(Saga, bool), StoreError> {
        // One statement (one round trip to the writer): the no-op update on a conflict makes
        // RETURNING yield the stored saga; it was created when it carries our new id.
        let sql = format!(
            "INSERT INTO sagas ({COLUMNS}) VALUES ({})
             ON CONFLICT (execution_id, saga_name) DO UPDATE SET saga_name = excluded.saga_name
             RETURNING {COLUMNS}",
            placeholders(14)
        );
        let query = sqlx::query(&sql)
            .bind(&saga.saga_id)
            .bind(&saga.saga_name)
            .bind(&saga.execution_id)
            .bind(&saga.user_id)
            .bind(saga.state.as_str())
            .bind(&saga.current_step)
            .bind(to_json(&saga.completed_steps)?)
            .bind(to_json(&saga.compensated_steps)?)
            .bind(to_json(&saga.context)?)
            .bind(&saga.error_message)
            .bind(saga.retry_count)
            .bind(ts(saga.created_at))
            .bind(ts(saga.updated_at))
            .bind(saga.completed_at.map(ts));
        let stored = fetch_one(query, &self.writer, decode).await?;
        let created = stored.saga_id == saga.saga_id;
        Ok((stored, created))
    }

    /// `NotFound` for an unknown saga; `Conflict` for any save to a saga that is already
    /// terminal, even one that would not change it.
    async fn save_saga(&self, saga: &Saga) -> Result<(), StoreError> {
        // A plain statement, one round trip to the writer, for the usual success.
        let mut conn = self.writer.acquire().await.map_err(classify)?;
        update(&mut conn, saga).await
    }

    async fn save_saga_with_events(
        &self,
        saga: &Saga,
        events: &[Envelope],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut tx = self.begin_write().await?;
        update(&mut tx, saga).await?;
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            stored.push(super::events::append(&mut tx, event).await?);
        }
        tx.commit().await.map_err(classify)?;
        Ok(stored)
    }

    async fn saga(&self, saga_id: &str) -> Result<Option<Saga>, StoreError> {
        self.saga_where("saga_id", saga_id).await
    }

    /// The execution's oldest saga when it has several (of different names).
    async fn saga_for_execution(&self, execution_id: &str) -> Result<Option<Saga>, StoreError> {
        self.saga_where("execution_id", execution_id).await
    }

    /// Newest first; `limit` 0 means no limit.
    async fn list_sagas(&self, filter: &SagaFilter) -> Result<(Vec<Saga>, u64), StoreError> {
        let page = Page {
            table: "sagas",
            columns: COLUMNS,
            order_by: "created_at DESC, rowid DESC",
            limit: filter.limit,
            skip: filter.skip,
        };
        page.fetch(&self.reader, |qb| push_filter(qb, filter), decode)
            .await
    }
}
