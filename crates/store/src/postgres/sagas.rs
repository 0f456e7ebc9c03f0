//! PostgreSQL: sagas, one per (execution, saga name), with their step log; terminal sagas are
//! frozen.

use async_trait::async_trait;
use integr8s_core::ports::{SagaFilter, SagaStore};
use integr8s_core::saga::{Saga, SagaState};
use integr8s_core::{Envelope, StoreError, StoredEvent};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::query::{execute, fetch_one, fetch_optional, Page};
use super::{classify, PostgresStore};
use crate::codec::{to_json, ts};
use crate::rows::sagas::{decode, COLUMNS};

fn terminal_states() -> Vec<&'static str> {
    SagaState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(SagaState::as_str)
        .collect()
}

fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &SagaFilter) {
    qb.push(" WHERE TRUE");
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
/// update reads what refused it).
async fn update(conn: &mut PgConnection, saga: &Saga) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE sagas SET state = $1, current_step = $2, completed_steps = $3,
             compensated_steps = $4, context = $5, error_message = $6, retry_count = $7,
             updated_at = $8, completed_at = $9
         WHERE saga_id = $10 AND NOT (state = ANY($11))",
    )
    .bind(saga.state.as_str())
    .bind(&saga.current_step)
    .bind(to_json(&saga.completed_steps)?)
    .bind(to_json(&saga.compensated_steps)?)
    .bind(to_json(&saga.context)?)
    .bind(&saga.error_message)
    .bind(saga.retry_count)
    .bind(ts(saga.updated_at))
    .bind(saga.completed_at.map(ts))
    .bind(&saga.saga_id)
    .bind(terminal_states());
    if execute(query, &mut *conn).await? == 1 {
        return Ok(());
    }
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM sagas WHERE saga_id = $1")
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

impl PostgresStore {
    async fn saga_where(&self, column: &str, value: &str) -> Result<Option<Saga>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sagas WHERE {column} = $1 ORDER BY created_at, row_seq LIMIT 1"
        );
        fetch_optional(sqlx::query(&sql).bind(value), &self.pool, decode).await
    }
}

#[async_trait]
impl SagaStore for PostgresStore {
    async fn get_or_create_saga(&self, saga: &Saga) -> Result<(Saga, bool), StoreError> {
        // The no-op update on a conflict makes RETURNING yield the stored saga (concurrent
        // creators wait on the unique index and all get the first one); it was created now when
        // it carries our new id.
        let sql = format!(
            "INSERT INTO sagas ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (execution_id, saga_name) DO UPDATE SET saga_name = excluded.saga_name
             RETURNING {COLUMNS}"
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
        let stored = fetch_one(query, &self.pool, decode).await?;
        let created = stored.saga_id == saga.saga_id;
        Ok((stored, created))
    }

    /// `NotFound` for an unknown saga; `Conflict` for any save to a saga that is already
    /// terminal, even one that would not change it.
    async fn save_saga(&self, saga: &Saga) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        update(&mut conn, saga).await
    }

    async fn save_saga_with_events(
        &self,
        saga: &Saga,
        events: &[Envelope],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut tx = self.begin().await?;
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
            order_by: "created_at DESC, row_seq DESC",
            limit: filter.limit,
            skip: filter.skip,
        };
        page.fetch(&self.pool, |qb| push_filter(qb, filter), decode)
            .await
    }
}
