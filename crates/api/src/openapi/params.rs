//! The query parameters each handler reads from its [`QueryPairs`](crate::extract::QueryPairs),
//! one struct per handler, with the handler's names, defaults and bounds. Their schemas become
//! the operations' `parameters`; the API test `query_parameters_are_read_by_their_handlers`
//! sends an invalid value for every typed parameter and expects the handler's 422 naming it.

// The structs only describe the query strings; the handlers parse them field by field.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use integr8s_core::event::EventType;
use integr8s_core::execution::{ExecutionStatus, Priority};
use integr8s_core::notification::NotificationStatus;
use integr8s_core::ports::dlq::DlqStatus;
use integr8s_core::ports::replay::ReplayStatus;
use integr8s_core::saga::SagaState;
use integr8s_core::user::Role;
use schemars::JsonSchema;

/// `GET /api/v1/user/executions`.
#[derive(JsonSchema)]
pub struct UserExecutionsQuery {
    /// Filter by execution status
    status: Option<ExecutionStatus>,
    /// Filter by programming language
    lang: Option<String>,
    /// Filter executions created after this time
    start_time: Option<DateTime<Utc>>,
    /// Filter executions created before this time
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 200), extend("default" = 50))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    skip: i64,
}

/// `POST /api/v1/execute` (integr8s extension).
#[derive(JsonSchema)]
pub struct ExecuteQuery {
    /// integr8s extension: answer once the execution has ended, with its result (the shape of
    /// `GET /api/v1/executions/{execution_id}/result`), or after its time limit plus 10 s with
    /// its status then. A waiting request counts as an open event stream.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    wait: bool,
}

/// `GET /api/v1/scripts` (an integr8s extension: the original lists every script).
#[derive(JsonSchema)]
pub struct SavedScriptsQuery {
    #[serde(default)]
    #[schemars(range(min = 1, max = 500), extend("default" = 100))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    offset: i64,
}

/// `GET /api/v1/executions/{execution_id}/events`.
#[derive(JsonSchema)]
pub struct ExecutionEventsQuery {
    /// Event types to filter (repeat the parameter for several)
    event_types: Option<Vec<EventType>>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: i64,
}

/// `GET /api/v1/admin/executions/`.
#[derive(JsonSchema)]
pub struct AdminExecutionsQuery {
    status: Option<ExecutionStatus>,
    priority: Option<Priority>,
    user_id: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 200), extend("default" = 50))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    skip: i64,
}

/// `GET /api/v1/admin/users/`.
#[derive(JsonSchema)]
pub struct AdminUsersQuery {
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    offset: i64,
    /// Search by username or email
    search: Option<String>,
    /// Filter by user role
    role: Option<Role>,
}

/// `DELETE /api/v1/admin/users/{user_id}`.
#[derive(JsonSchema)]
pub struct DeleteUserQuery {
    /// Cascade delete user's data
    #[serde(default)]
    #[schemars(extend("default" = true))]
    cascade: bool,
}

/// `GET /api/v1/admin/events/stats`.
#[derive(JsonSchema)]
pub struct EventStatsQuery {
    /// Lookback window in hours (max 168)
    #[serde(default)]
    #[schemars(range(min = 1, max = 168), extend("default" = 24))]
    hours: i64,
}

/// `GET /api/v1/admin/events/export/{export_format}`.
#[derive(JsonSchema)]
pub struct EventExportQuery {
    /// Event types (repeat param for multiple)
    event_types: Option<Vec<EventType>>,
    /// Aggregate ID filter
    aggregate_id: Option<String>,
    /// User ID filter
    user_id: Option<String>,
    /// Service name filter
    service_name: Option<String>,
    /// Start time
    start_time: Option<DateTime<Utc>>,
    /// End time
    end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 50000), extend("default" = 10000))]
    limit: i64,
}

/// `GET /api/v1/admin/settings/audit`.
#[derive(JsonSchema)]
pub struct SettingsAuditQuery {
    #[serde(default)]
    #[schemars(range(min = 1, max = 500), extend("default" = 50))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    skip: i64,
}

/// `GET /api/v1/user/settings/history`.
#[derive(JsonSchema)]
pub struct SettingsHistoryQuery {
    /// Maximum number of history entries
    #[serde(default)]
    #[schemars(range(min = 1, max = 200), extend("default" = 50))]
    limit: i64,
}

/// `GET /api/v1/notifications`.
#[derive(JsonSchema)]
pub struct NotificationsQuery {
    status: Option<NotificationStatus>,
    /// Only notifications with any of these tags
    include_tags: Option<Vec<String>>,
    /// Exclude notifications with any of these tags
    exclude_tags: Option<Vec<String>>,
    /// Only notifications having a tag starting with this prefix
    tag_prefix: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 100), extend("default" = 50))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    offset: i64,
}

/// `GET /api/v1/sagas/execution/{execution_id}`.
#[derive(JsonSchema)]
pub struct ExecutionSagasQuery {
    /// Filter by saga state
    state: Option<SagaState>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    skip: i64,
}

/// `GET /api/v1/sagas/`.
#[derive(JsonSchema)]
pub struct SagasQuery {
    /// Filter by saga state
    state: Option<SagaState>,
    /// Filter by execution ID
    execution_id: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    skip: i64,
}

/// `GET /api/v1/replay/sessions`.
#[derive(JsonSchema)]
pub struct ReplaySessionsQuery {
    /// Filter by replay session status
    status: Option<ReplayStatus>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: i64,
}

/// `POST /api/v1/replay/cleanup`.
#[derive(JsonSchema)]
pub struct ReplayCleanupQuery {
    /// Delete sessions older than this many hours
    #[serde(default)]
    #[schemars(range(min = 1, max = 876000), extend("default" = 24))]
    older_than_hours: i64,
}

/// `GET /api/v1/dlq/messages`.
#[derive(JsonSchema)]
pub struct DlqMessagesQuery {
    status: Option<DlqStatus>,
    event_type: Option<EventType>,
    /// The consumer group that gave the message up
    group: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), extend("default" = 50))]
    limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0), extend("default" = 0))]
    offset: i64,
}
