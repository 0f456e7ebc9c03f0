//! Conversions between domain values and SQLite column values.

use chrono::{DateTime, SecondsFormat, Utc};
use integr8s_core::StoreError;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

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
pub(crate) fn col<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a count column that must fit in `u32`.
pub(crate) fn col_u32(row: &SqliteRow, name: &str) -> Result<u32, StoreError> {
    let v: i64 = col(row, name)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{name} out of range: {v}")))
}

pub(crate) fn col_ts(row: &SqliteRow, name: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_ts(&col::<String>(row, name)?)
}

pub(crate) fn col_opt_ts(row: &SqliteRow, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    col::<Option<String>>(row, name)?
        .map(|s| parse_ts(&s))
        .transpose()
}

/// Parses an enum column with the enum's own `parse`.
pub(crate) fn col_enum<T>(
    row: &SqliteRow,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let s: String = col(row, name)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("column {name}: unknown value {s:?}")))
}

pub(crate) fn col_json<T: serde::de::DeserializeOwned>(
    row: &SqliteRow,
    name: &str,
) -> Result<T, StoreError> {
    let s: String = col(row, name)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("serialize: {e}")))
}

/// SQLite integers are signed 64-bit.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Other(format!("{what} out of range: {value}")))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// A `limit` of 0 means no limit; SQLite reads `LIMIT -1` as unlimited.
pub(crate) fn sql_limit(limit: u32) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::from(limit)
    }
}
