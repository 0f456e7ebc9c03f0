//! Typed responses of the admin event views (statistics, detail, browse, delete); events are
//! documented by core's `Envelope` schema (`DomainEvent`).

use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventType};
use integr8s_core::ports::admin::EventStats;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The contract's `EventTypeCount`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventTypeCount {
    pub event_type: String,
    pub count: u64,
}

/// The contract's `HourlyEventCount` (`hour` is `YYYY-MM-DD HH:00`, UTC).
#[derive(Debug, Serialize, JsonSchema)]
pub struct HourlyEventCount {
    pub hour: String,
    pub count: u64,
}

/// The contract's `ServiceEventCount`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServiceEventCount {
    pub service_name: String,
    pub count: u64,
}

/// The contract's `UserEventCount`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserEventCount {
    pub user_id: String,
    pub event_count: u64,
}

fn by_type(stats: &EventStats) -> Vec<EventTypeCount> {
    let counts = &stats.events_by_type;
    counts
        .iter()
        .map(|(t, n)| EventTypeCount {
            event_type: t.clone(),
            count: *n,
        })
        .collect()
}

fn by_hour(stats: &EventStats) -> Vec<HourlyEventCount> {
    let counts = &stats.events_by_hour;
    counts
        .iter()
        .map(|(h, n)| HourlyEventCount {
            hour: h.clone(),
            count: *n,
        })
        .collect()
}

fn top_users(stats: &EventStats) -> Vec<UserEventCount> {
    let counts = &stats.top_users;
    counts
        .iter()
        .map(|(u, n)| UserEventCount {
            user_id: u.clone(),
            event_count: *n,
        })
        .collect()
}

/// The contract's `EventStatsResponse` (`GET /api/v1/admin/events/stats`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventStatsResponse {
    pub total_events: u64,
    pub events_by_type: Vec<EventTypeCount>,
    pub events_by_hour: Vec<HourlyEventCount>,
    pub top_users: Vec<UserEventCount>,
    pub error_rate: f64,
    pub avg_processing_time: f64,
}

impl From<&EventStats> for EventStatsResponse {
    fn from(stats: &EventStats) -> Self {
        Self {
            total_events: stats.total_events,
            events_by_type: by_type(stats),
            events_by_hour: by_hour(stats),
            top_users: top_users(stats),
            error_rate: stats.error_rate,
            avg_processing_time: stats.avg_processing_time,
        }
    }
}

/// The contract's `EventStatistics`: the statistics of one window, with its bounds and the
/// per-service counts (the user overview's `stats`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventStatistics {
    pub total_events: u64,
    pub events_by_type: Vec<EventTypeCount>,
    pub events_by_service: Vec<ServiceEventCount>,
    pub events_by_hour: Vec<HourlyEventCount>,
    pub top_users: Vec<UserEventCount>,
    pub error_rate: f64,
    pub avg_processing_time: f64,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

impl EventStatistics {
    pub fn new(stats: &EventStats, start_time: DateTime<Utc>, end_time: DateTime<Utc>) -> Self {
        Self {
            total_events: stats.total_events,
            events_by_type: by_type(stats),
            events_by_service: stats
                .events_by_service
                .iter()
                .map(|(s, n)| ServiceEventCount {
                    service_name: s.clone(),
                    count: *n,
                })
                .collect(),
            events_by_hour: by_hour(stats),
            top_users: top_users(stats),
            error_rate: stats.error_rate,
            avg_processing_time: stats.avg_processing_time,
            start_time,
            end_time,
        }
    }
}

/// The contract's `EventFilter` (every condition optional; times are ISO 8601, an offset-less
/// one taken as UTC).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EventFilter {
    pub event_types: Option<Vec<EventType>>,
    pub aggregate_id: Option<String>,
    pub user_id: Option<String>,
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub start_time: Option<String>,
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub end_time: Option<String>,
    pub service_name: Option<String>,
    pub search_text: Option<String>,
}

/// The contract's `EventBrowseRequest` (`limit` at most 500; negative paging reads as zero).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EventBrowseRequest {
    pub filters: EventFilter,
    #[serde(default)]
    pub skip: i64,
    #[serde(default = "default_browse_limit")]
    #[schemars(range(max = 500))]
    pub limit: i64,
}

fn default_browse_limit() -> i64 {
    50
}

/// The contract's `EventBrowseResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventBrowseResponse {
    pub events: Vec<Envelope>,
    pub total: u64,
    pub skip: i64,
    pub limit: i64,
}

/// The contract's `EventSummary`: an event of the same aggregate, in a detail view.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventSummary {
    pub event_id: String,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub aggregate_id: Option<String>,
}

impl From<Envelope> for EventSummary {
    fn from(env: Envelope) -> Self {
        Self {
            event_type: env.payload.event_type(),
            event_id: env.event_id,
            timestamp: env.timestamp,
            aggregate_id: env.aggregate_id,
        }
    }
}

/// The contract's `EventDetailResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventDetailResponse {
    pub event: Envelope,
    pub related_events: Vec<EventSummary>,
    pub timeline: Vec<EventSummary>,
}

/// The contract's `EventDeleteResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventDeleteResponse {
    pub message: String,
    pub event_id: String,
}
