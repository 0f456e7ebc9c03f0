//! `/api/v1/admin/events/*`: browse with filters and text search, statistics, detail with
//! related events, and delete-with-archive. Export is in `events_export.rs`; replay belongs to
//! `replay.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use integr8s_core::event::EventType;
use integr8s_core::ports::admin::EventQuery;
use serde_json::Value;

use super::events_schema::{
    EventBrowseRequest, EventBrowseResponse, EventDeleteResponse, EventDetailResponse, EventFilter,
    EventStatsResponse, EventSummary,
};

use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{deserialize_value, AppJson, AppPath, QueryPairs};
use crate::state::AppState;

/// Largest page of `browse`.
const MAX_BROWSE_LIMIT: i64 = 500;
/// How many related events the detail shows, and how many of them form the timeline.
const RELATED_EVENTS: usize = 10;
const TIMELINE_EVENTS: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/events/browse", post(browse))
        .route("/api/v1/admin/events/stats", get(stats))
        .route(
            "/api/v1/admin/events/export/{export_format}",
            get(super::events_export::export),
        )
        .route(
            "/api/v1/admin/events/{event_id}",
            get(detail).delete(remove),
        )
}

fn event_not_found() -> ApiError {
    ApiError::domain(StatusCode::NOT_FOUND, "NotFoundError", "Event not found")
}

/// An ISO 8601 date-time; one without an offset is taken as UTC.
pub(super) fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn body_time(field: &str, raw: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|r| {
        parse_time(&r).ok_or_else(|| {
            ApiError::invalid(
                &["body", "filters", field],
                "datetime_from_date_parsing",
                "Input should be a valid datetime",
            )
        })
    })
    .transpose()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl EventFilter {
    fn into_query(self) -> Result<EventQuery, ApiError> {
        Ok(EventQuery {
            event_types: self.event_types.unwrap_or_default(),
            aggregate_id: non_empty(self.aggregate_id),
            user_id: non_empty(self.user_id),
            service_name: non_empty(self.service_name),
            start_time: body_time("start_time", self.start_time)?,
            end_time: body_time("end_time", self.end_time)?,
            search_text: non_empty(self.search_text),
        })
    }
}

async fn browse(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppJson(body): AppJson<Value>,
) -> Result<Json<EventBrowseResponse>, ApiError> {
    let body: EventBrowseRequest = deserialize_value(body)?;
    if body.limit > MAX_BROWSE_LIMIT {
        return Err(ApiError::invalid(
            &["body", "limit"],
            "less_than_equal",
            format!("Input should be less than or equal to {MAX_BROWSE_LIMIT}"),
        ));
    }
    // Negative paging is treated as zero, as the original's database driver does.
    let skip = u32::try_from(body.skip.max(0)).unwrap_or(u32::MAX);
    let limit = u32::try_from(body.limit.max(0)).unwrap_or(0);
    let query = body.filters.into_query()?;
    let total = state.store.count_events(&query).await?;
    let events: Vec<_> = if limit == 0 {
        Vec::new()
    } else {
        state
            .store
            .query_events(&query, None, skip, limit)
            .await?
            .into_iter()
            .map(|e| e.envelope)
            .collect()
    };
    Ok(Json(EventBrowseResponse {
        events,
        total,
        skip: body.skip,
        limit: body.limit,
    }))
}

async fn stats(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<EventStatsResponse>, ApiError> {
    let hours = query.int_in("hours", 24, 1, 168)?;
    let since = integr8s_core::now() - Duration::hours(hours);
    let stats = state.store.event_stats(since, None).await?;
    Ok(Json(EventStatsResponse::from(&stats)))
}

async fn detail(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(event_id): AppPath<String>,
) -> Result<Json<EventDetailResponse>, ApiError> {
    let event = state
        .store
        .event_by_id(&event_id)
        .await?
        .ok_or_else(event_not_found)?;
    let related: Vec<EventSummary> = match &event.envelope.aggregate_id {
        Some(aggregate) => state
            .store
            .events_for_aggregate(aggregate, &[], (RELATED_EVENTS + 1) as u32)
            .await?
            .into_iter()
            .filter(|e| e.envelope.event_id != event_id)
            .take(RELATED_EVENTS)
            .map(|e| EventSummary::from(e.envelope))
            .collect(),
        None => Vec::new(),
    };
    let timeline = related.iter().take(TIMELINE_EVENTS).cloned().collect();
    Ok(Json(EventDetailResponse {
        event: event.envelope,
        related_events: related,
        timeline,
    }))
}

async fn remove(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(event_id): AppPath<String>,
) -> Result<Json<EventDeleteResponse>, ApiError> {
    if !state
        .store
        .archive_and_delete_event(&event_id, &admin.email)
        .await?
    {
        return Err(event_not_found());
    }
    tracing::info!(admin = %admin.username, %event_id, "event deleted and archived");
    Ok(Json(EventDeleteResponse {
        message: "Event deleted and archived".to_owned(),
        event_id,
    }))
}

/// The export filters from the query string (`event_types` may repeat).
pub(super) fn query_filter(query: &QueryPairs) -> Result<EventQuery, ApiError> {
    let event_types = query
        .all("event_types")
        .map(|raw| {
            EventType::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    &["query", "event_types"],
                    "enum",
                    format!("Input should be a valid event type, got '{raw}'"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        query
            .get(name)
            .filter(|r| !r.is_empty())
            .map(|r| {
                parse_time(r).ok_or_else(|| {
                    ApiError::invalid(
                        &["query", name],
                        "datetime_from_date_parsing",
                        "Input should be a valid datetime",
                    )
                })
            })
            .transpose()
    };
    let text = |name: &str| query.get(name).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(EventQuery {
        event_types,
        aggregate_id: text("aggregate_id"),
        user_id: text("user_id"),
        service_name: text("service_name"),
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        search_text: None,
    })
}
