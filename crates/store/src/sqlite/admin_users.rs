//! User administration: search, partial updates, and deletion with everything the user owns.

use std::collections::HashMap;

use async_trait::async_trait;
use integr8s_core::ports::admin::{UserAdminStore, UserDeletion, UserListFilter, UserUpdate};
use integr8s_core::ports::ExecutionStore;
use integr8s_core::user::User;
use integr8s_core::{Execution, ExecutionStatus, Priority, StoreError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query::{fetch_optional, Page};
use super::{classify, SqliteStore};
use crate::cascade;
use crate::codec::{like_pattern, to_u64, ts};
use crate::rows::users::{decode, COLUMNS};

fn push_user_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &UserListFilter) {
    qb.push(" WHERE 1 = 1");
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = like_pattern(search);
        qb.push(" AND (username LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR email LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    if let Some(role) = filter.role {
        qb.push(" AND role = ").push_bind(role.as_str());
    }
}

/// Deletes what the user owns (see [`crate::cascade`]); the caller's transaction makes it
/// all-or-nothing.
async fn delete_owned(
    conn: &mut SqliteConnection,
    user_id: &str,
) -> Result<UserDeletion, StoreError> {
    let mut counts = UserDeletion::default();
    for (counted, sql) in cascade::statements("?1") {
        let done = sqlx::query(&sql)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        cascade::add(&mut counts, counted, done.rows_affected());
    }
    Ok(counts)
}

#[async_trait]
impl UserAdminStore for SqliteStore {
    async fn list_users(&self, filter: &UserListFilter) -> Result<(Vec<User>, u64), StoreError> {
        let page = Page {
            table: "users",
            columns: COLUMNS,
            order_by: "created_at, rowid",
            limit: filter.limit,
            skip: filter.offset,
        };
        page.fetch(&self.reader, |qb| push_user_filter(qb, filter), decode)
            .await
    }

    async fn update_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new("UPDATE users SET updated_at = ");
        qb.push_bind(ts(integr8s_core::now()));
        if let Some(username) = &update.username {
            qb.push(", username = ").push_bind(username.clone());
        }
        if let Some(email) = &update.email {
            qb.push(", email = ").push_bind(email.clone());
        }
        if let Some(role) = update.role {
            qb.push(", role = ").push_bind(role.as_str());
        }
        if let Some(active) = update.is_active {
            qb.push(", is_active = ").push_bind(active);
        }
        if let Some(hash) = &update.password_hash {
            qb.push(", password_hash = ").push_bind(hash.clone());
        }
        qb.push(" WHERE user_id = ")
            .push_bind(user_id.to_owned())
            .push(format!(" RETURNING {COLUMNS}"));
        fetch_optional(qb.build(), &self.writer, decode).await
    }

    async fn delete_user(
        &self,
        user_id: &str,
        cascade_data: bool,
    ) -> Result<Option<UserDeletion>, StoreError> {
        let mut tx = self.begin_write().await?;
        let counts = if cascade_data {
            delete_owned(&mut tx, user_id).await?
        } else {
            UserDeletion::default()
        };
        let done = sqlx::query("DELETE FROM users WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            // Unknown user: nothing of the cascade is kept either.
            return Ok(None);
        }
        tx.commit().await.map_err(classify)?;
        Ok(Some(counts))
    }

    async fn set_execution_priority(
        &self,
        execution_id: &str,
        priority: Priority,
    ) -> Result<Option<Execution>, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET priority = ?, updated_at = ? WHERE execution_id = ?",
        )
        .bind(priority.as_str())
        .bind(ts(integr8s_core::now()))
        .bind(execution_id)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.execution(execution_id).await
    }

    async fn execution_status_counts(
        &self,
        user_id: &str,
    ) -> Result<HashMap<ExecutionStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM executions WHERE user_id = ? GROUP BY status",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(status, n)| {
                let status = ExecutionStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?;
                Ok((status, to_u64(n, "execution count")?))
            })
            .collect()
    }
}
