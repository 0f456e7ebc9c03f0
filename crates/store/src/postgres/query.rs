//! Query shapes shared by the PostgreSQL modules: run a statement, classify its error and decode
//! its rows, or read one counted page of a filtered listing.

use integr8s_core::StoreError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Executor, PgPool, Postgres, QueryBuilder};

use super::classify;
use crate::codec::to_u64;

/// A statement with its bound values, ready to run.
pub(crate) type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// Decodes one row into a domain value.
pub(crate) type Decode<T> = fn(&PgRow) -> Result<T, StoreError>;

/// Runs `statement` and decodes the row it returns, if any.
pub(crate) async fn fetch_optional<'c, T>(
    statement: Statement<'_>,
    executor: impl Executor<'c, Database = Postgres>,
    decode: Decode<T>,
) -> Result<Option<T>, StoreError> {
    statement
        .fetch_optional(executor)
        .await
        .map_err(classify)?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Runs `statement`, which must return a row, and decodes it.
pub(crate) async fn fetch_one<'c, T>(
    statement: Statement<'_>,
    executor: impl Executor<'c, Database = Postgres>,
    decode: Decode<T>,
) -> Result<T, StoreError> {
    let row = statement.fetch_one(executor).await.map_err(classify)?;
    decode(&row)
}

/// Runs `statement` and decodes every row it returns, in order.
pub(crate) async fn fetch_all<'c, T>(
    statement: Statement<'_>,
    executor: impl Executor<'c, Database = Postgres>,
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let rows = statement.fetch_all(executor).await.map_err(classify)?;
    rows.iter().map(decode).collect()
}

/// Runs `statement` and returns how many rows it changed.
pub(crate) async fn execute<'c>(
    statement: Statement<'_>,
    executor: impl Executor<'c, Database = Postgres>,
) -> Result<u64, StoreError> {
    let done = statement.execute(executor).await.map_err(classify)?;
    Ok(done.rows_affected())
}

/// A `limit` of 0 means no limit: PostgreSQL reads `LIMIT NULL` as unlimited.
pub(crate) fn sql_limit(limit: u32) -> Option<i64> {
    (limit != 0).then(|| i64::from(limit))
}

/// One page of a filtered listing:
/// `SELECT columns FROM table <filter> ORDER BY order_by LIMIT limit OFFSET skip`.
pub(crate) struct Page<'a> {
    pub(crate) table: &'a str,
    pub(crate) columns: &'a str,
    pub(crate) order_by: &'a str,
    /// 0 means no limit.
    pub(crate) limit: u32,
    pub(crate) skip: u32,
}

impl Page<'_> {
    /// The page's rows, decoded, and the number of rows matching the filter on all pages.
    /// `push_filter` appends the `WHERE` clause (with its bound values) to both statements.
    pub(crate) async fn fetch<T>(
        self,
        pool: &PgPool,
        push_filter: impl Fn(&mut QueryBuilder<'_, Postgres>),
        decode: Decode<T>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        let mut count =
            QueryBuilder::<Postgres>::new(format!("SELECT COUNT(*) FROM {}", self.table));
        push_filter(&mut count);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(pool)
            .await
            .map_err(classify)?;

        let mut list =
            QueryBuilder::<Postgres>::new(format!("SELECT {} FROM {}", self.columns, self.table));
        push_filter(&mut list);
        list.push(format!(" ORDER BY {} LIMIT ", self.order_by))
            .push_bind(sql_limit(self.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(self.skip));
        let items = fetch_all(list.build(), pool, decode).await?;
        Ok((items, to_u64(total, &format!("{} count", self.table))?))
    }
}
