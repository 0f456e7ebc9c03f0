//! `GET /api/v1/admin/events/export/{csv|json}`: the matching events, newest first, streamed
//! page by page (keyset paging), so an export of any size never sits in memory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use integr8s_core::ports::admin::{EventCursor, EventQuery};
use integr8s_core::ports::EventQueryStore;
use integr8s_core::{Envelope, StoreError};
use serde_json::json;

use super::events::query_filter;
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{AppPath, QueryPairs};
use crate::state::AppState;

/// Events read from the store per page of the stream.
const PAGE: u64 = 500;
const CSV_HEADER: &str =
    "Event ID,Event Type,Timestamp,Aggregate ID,User ID,Service,Status,Error\n";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Json,
}

/// Quotes a CSV field when it holds a separator, a quote or a line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv_row(env: &Envelope) -> String {
    let fields = [
        env.event_id.as_str(),
        env.event_type().as_str(),
        &env.timestamp.to_rfc3339(),
        env.aggregate_id.as_deref().unwrap_or(""),
        env.metadata.user_id.as_deref().unwrap_or(""),
        env.metadata.service_name.as_str(),
        "",
        "",
    ]
    .map(csv_field);
    format!("{}\n", fields.join(","))
}

/// Where the page stream is.
struct Cursor {
    store: Arc<dyn EventQueryStore>,
    query: EventQuery,
    after: Option<EventCursor>,
    remaining: u64,
    written: u64,
    format: Format,
}

/// Renders one page; `None` once the limit is reached or the events run out.
async fn next_page(mut c: Cursor) -> Option<(Result<Bytes, StoreError>, Cursor)> {
    if c.remaining == 0 {
        return None;
    }
    let size = u32::try_from(c.remaining.min(PAGE)).unwrap_or(500);
    let events = match c
        .store
        .query_events(&c.query, c.after.as_ref(), 0, size)
        .await
    {
        Ok(events) => events,
        Err(e) => {
            // The status line is gone already: end the body early and log why.
            tracing::error!(error = %e, "event export aborted");
            c.remaining = 0;
            return Some((Err(e), c));
        }
    };
    let last = events.last()?;
    c.after = Some(EventCursor::after(last));
    c.remaining = c.remaining.saturating_sub(events.len() as u64);
    let mut out = String::new();
    for event in &events {
        match c.format {
            Format::Csv => out.push_str(&csv_row(&event.envelope)),
            Format::Json => {
                if c.written > 0 {
                    out.push(',');
                }
                match serde_json::to_string(&event.envelope) {
                    Ok(s) => out.push_str(&s),
                    Err(e) => return Some((Err(StoreError::Other(e.to_string())), c)),
                }
            }
        }
        c.written += 1;
    }
    Some((Ok(Bytes::from(out)), c))
}

fn body_stream(
    head: String,
    tail: &'static str,
    cursor: Cursor,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send {
    stream::once(async move { Ok(Bytes::from(head)) })
        .chain(stream::unfold(cursor, next_page))
        .chain(stream::once(async move {
            Ok(Bytes::from_static(tail.as_bytes()))
        }))
}

pub(super) async fn export(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(export_format): AppPath<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let format = match export_format.as_str() {
        "csv" => Format::Csv,
        "json" => Format::Json,
        _ => {
            return Err(ApiError::invalid(
                &["path", "export_format"],
                "enum",
                "Input should be 'csv' or 'json'",
            ))
        }
    };
    let limit = query.int_in("limit", 10_000, 1, 50_000)?;
    let limit = u64::try_from(limit).unwrap_or(10_000);
    let filter = query_filter(&query)?;
    let now = integr8s_core::now();
    let (head, tail, content_type) = match format {
        Format::Csv => (CSV_HEADER.to_owned(), "", "text/csv; charset=utf-8"),
        Format::Json => {
            let total = state.store.count_events(&filter).await?.min(limit);
            let applied: serde_json::Map<String, serde_json::Value> = query
                .0
                .iter()
                .filter(|(k, _)| k != "limit")
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let metadata = json!({
                "exported_at": now,
                "total_events": total,
                "filters_applied": applied,
                "export_limit": limit,
            });
            (
                format!("{{\"export_metadata\":{metadata},\"events\":["),
                "]}",
                "application/json",
            )
        }
    };
    let extension = if format == Format::Csv { "csv" } else { "json" };
    let filename = format!("events_export_{}.{extension}", now.format("%Y%m%d_%H%M%S"));
    tracing::info!(admin = %admin.username, %filename, limit, "event export started");
    let cursor = Cursor {
        store: state.store.clone(),
        query: filter,
        after: None,
        remaining: limit,
        written: 0,
        format,
    };
    let mut response = Body::from_stream(body_stream(head, tail, cursor)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename={filename}")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
