//! Conversions between domain values and column values, shared by every dialect.
//!
//! Timestamps are stored as RFC 3339 UTC text with a fixed nine-digit fraction in both
//! dialects: the domain keeps nanoseconds (a native PostgreSQL timestamp keeps microseconds), and
//! text order is time order under a byte-wise collation.
//!
//! Rows are read through [`Columns`], implemented by each dialect's row type, so one decoder per
//! domain type (in [`crate::rows`]) serves both adapters.

use chrono::{DateTime, SecondsFormat, Utc};
use integr8s_core::StoreError;
use sqlx::Row;

/// A value that every enabled dialect can decode from a column.
#[cfg(not(feature = "postgres"))]
pub(crate) trait ColumnValue:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>
{
}

#[cfg(not(feature = "postgres"))]
impl<T> ColumnValue for T where T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> {}

/// A value that every enabled dialect can decode from a column.
#[cfg(feature = "postgres")]
pub(crate) trait ColumnValue:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}

#[cfg(feature = "postgres")]
impl<T> ColumnValue for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A row of any dialect, read by column name.
pub(crate) trait Columns {
    /// Reads a typed column, mapping decode failures to `Corrupt`.
    fn get<T: ColumnValue>(&self, name: &str) -> Result<T, StoreError>;
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn get<T: ColumnValue>(&self, name: &str) -> Result<T, StoreError> {
        self.try_get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

#[cfg(feature = "postgres")]
impl Columns for sqlx::postgres::PgRow {
    fn get<T: ColumnValue>(&self, name: &str) -> Result<T, StoreError> {
        self.try_get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

/// RFC 3339 UTC with a fixed nine-digit fraction, so that text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

/// Reads a typed column, mapping decode failures to `Corrupt`.
pub(crate) fn col<T: ColumnValue>(row: &impl Columns, name: &str) -> Result<T, StoreError> {
    row.get(name)
}

/// Reads a count column that must fit in `u32`.
pub(crate) fn col_u32(row: &impl Columns, name: &str) -> Result<u32, StoreError> {
    let v: i64 = col(row, name)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{name} out of range: {v}")))
}

pub(crate) fn col_ts(row: &impl Columns, name: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_ts(&col::<String>(row, name)?)
}

pub(crate) fn col_opt_ts(
    row: &impl Columns,
    name: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    col::<Option<String>>(row, name)?
        .map(|s| parse_ts(&s))
        .transpose()
}

/// Parses an enum column with the enum's own `parse`.
pub(crate) fn col_enum<T>(
    row: &impl Columns,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let s: String = col(row, name)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("column {name}: unknown value {s:?}")))
}

pub(crate) fn col_json<T: serde::de::DeserializeOwned>(
    row: &impl Columns,
    name: &str,
) -> Result<T, StoreError> {
    let s: String = col(row, name)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("serialize: {e}")))
}

/// Both dialects store integers as signed 64-bit.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Other(format!("{what} out of range: {value}")))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// `%` and `_` match themselves: `\` escapes them (used with `ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
