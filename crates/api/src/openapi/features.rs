//! Typed operations of the feature routes: saved scripts, user settings, sagas, notifications,
//! replay sessions and the dead-letter queue.

use serde_json::{Map, Value};

use super::{json, params, Body, Operation};
use crate::routes::admin::replay::{EventReplayRequest, EventReplayResponse};
use crate::routes::dlq::{
    DlqDiscardRequest, DlqDiscardResponse, DlqMessageListResponse, DlqMessageResponse,
    DlqRetryResponse, DlqStatsResponse,
};
use crate::routes::notifications::subscriptions::{SubscriptionUpdate, SubscriptionsResponse};
use crate::routes::notifications::{
    DeleteNotificationResponse, NotificationListResponse, UnreadCountResponse,
};
use crate::routes::replay::{
    CleanupResponse, ReplayRequest, ReplayResponse, ReplaySessionResponse, SessionSummary,
};
use crate::routes::sagas::{SagaCancellationResponse, SagaListResponse, SagaStatusResponse};
use crate::routes::scripts::{
    SavedScriptCreateRequest, SavedScriptListResponse, SavedScriptResponse, SavedScriptUpdate,
};
use crate::routes::user_settings::{
    RestoreSettingsRequest, SettingsHistoryResponse, ThemeUpdateRequest, UserSettingsUpdate,
};
use integr8s_core::notification::Subscription;
use integr8s_core::user_settings::{EditorSettings, NotificationSettings, UserSettings};

pub fn scripts() -> Vec<Operation> {
    const T: &str = "scripts";
    vec![
        Operation::get("/api/v1/scripts", T)
            .summary("List Saved Scripts")
            .query::<params::SavedScriptsQuery>()
            .response(json::<SavedScriptListResponse>()),
        Operation::post("/api/v1/scripts", T)
            .summary("Create Saved Script")
            .request(json::<SavedScriptCreateRequest>())
            .response(json::<SavedScriptResponse>()),
        Operation::get("/api/v1/scripts/{script_id}", T)
            .summary("Get Saved Script")
            .response(json::<SavedScriptResponse>()),
        Operation::put("/api/v1/scripts/{script_id}", T)
            .summary("Update Saved Script")
            .request(json::<SavedScriptUpdate>())
            .response(json::<SavedScriptResponse>()),
        Operation::delete("/api/v1/scripts/{script_id}", T)
            .summary("Delete Saved Script")
            .response(Body::NoContent),
    ]
}

pub fn user_settings() -> Vec<Operation> {
    const T: &str = "user-settings";
    vec![
        Operation::get("/api/v1/user/settings/", T)
            .summary("Get User Settings")
            .response(json::<UserSettings>()),
        Operation::put("/api/v1/user/settings/", T)
            .summary("Update User Settings")
            .request(json::<UserSettingsUpdate>())
            .response(json::<UserSettings>()),
        Operation::put("/api/v1/user/settings/theme", T)
            .summary("Update Theme")
            .request(json::<ThemeUpdateRequest>())
            .response(json::<UserSettings>()),
        Operation::put("/api/v1/user/settings/notifications", T)
            .summary("Update Notification Settings")
            .request(json::<NotificationSettings>())
            .response(json::<UserSettings>()),
        Operation::put("/api/v1/user/settings/editor", T)
            .summary("Update Editor Settings")
            .request(json::<EditorSettings>())
            .response(json::<UserSettings>()),
        Operation::get("/api/v1/user/settings/history", T)
            .summary("Get Settings History")
            .query::<params::SettingsHistoryQuery>()
            .response(json::<SettingsHistoryResponse>()),
        Operation::post("/api/v1/user/settings/restore", T)
            .summary("Restore Settings")
            .request(json::<RestoreSettingsRequest>())
            .response(json::<UserSettings>()),
        Operation::put("/api/v1/user/settings/custom/{key}", T)
            .summary("Update Custom Setting")
            .request(json::<Map<String, Value>>())
            .response(json::<UserSettings>()),
    ]
}

pub fn sagas() -> Vec<Operation> {
    const T: &str = "sagas";
    vec![
        Operation::get("/api/v1/sagas/", T)
            .summary("List Sagas")
            .query::<params::SagasQuery>()
            .response(json::<SagaListResponse>()),
        Operation::get("/api/v1/sagas/execution/{execution_id}", T)
            .summary("Get Execution Sagas")
            .query::<params::ExecutionSagasQuery>()
            .response(json::<SagaListResponse>()),
        Operation::get("/api/v1/sagas/{saga_id}", T)
            .summary("Get Saga Status")
            .response(json::<SagaStatusResponse>()),
        Operation::post("/api/v1/sagas/{saga_id}/cancel", T)
            .summary("Cancel Saga")
            .response(json::<SagaCancellationResponse>()),
    ]
}

pub fn notifications() -> Vec<Operation> {
    const T: &str = "notifications";
    vec![
        Operation::get("/api/v1/notifications", T)
            .summary("Get Notifications")
            .query::<params::NotificationsQuery>()
            .response(json::<NotificationListResponse>()),
        Operation::get("/api/v1/notifications/unread-count", T)
            .summary("Get Unread Count")
            .response(json::<UnreadCountResponse>()),
        Operation::post("/api/v1/notifications/mark-all-read", T)
            .summary("Mark All Read")
            .response(Body::NoContent),
        Operation::put("/api/v1/notifications/{notification_id}/read", T)
            .summary("Mark Notification Read")
            .response(Body::NoContent),
        Operation::delete("/api/v1/notifications/{notification_id}", T)
            .summary("Delete Notification")
            .response(json::<DeleteNotificationResponse>()),
        Operation::get("/api/v1/notifications/subscriptions", T)
            .summary("Get Subscriptions")
            .response(json::<SubscriptionsResponse>()),
        Operation::put("/api/v1/notifications/subscriptions/{channel}", T)
            .summary("Update Subscription")
            .request(json::<SubscriptionUpdate>())
            .response(json::<Subscription>()),
        Operation::get("/api/v1/events/notifications/stream", "sse")
            .summary("Notification Stream")
            .response(Body::EventStream),
    ]
}

pub fn replay() -> Vec<Operation> {
    const T: &str = "Event Replay";
    let control = |path, summary| {
        Operation::post(path, T)
            .summary(summary)
            .response(json::<ReplayResponse>())
    };
    vec![
        Operation::post("/api/v1/replay/sessions", T)
            .summary("Create Replay Session")
            .request(json::<ReplayRequest>())
            .response(json::<ReplayResponse>()),
        Operation::get("/api/v1/replay/sessions", T)
            .summary("List Replay Sessions")
            .query::<params::ReplaySessionsQuery>()
            .response(json::<Vec<SessionSummary>>()),
        Operation::get("/api/v1/replay/sessions/{session_id}", T)
            .summary("Get Replay Session")
            .response(json::<ReplaySessionResponse>()),
        control(
            "/api/v1/replay/sessions/{session_id}/start",
            "Start Replay Session",
        ),
        control(
            "/api/v1/replay/sessions/{session_id}/pause",
            "Pause Replay Session",
        ),
        control(
            "/api/v1/replay/sessions/{session_id}/resume",
            "Resume Replay Session",
        ),
        control(
            "/api/v1/replay/sessions/{session_id}/cancel",
            "Cancel Replay Session",
        ),
        Operation::post("/api/v1/replay/cleanup", T)
            .summary("Cleanup Old Sessions")
            .query::<params::ReplayCleanupQuery>()
            .response(json::<CleanupResponse>()),
        Operation::post("/api/v1/admin/events/replay", "admin-events")
            .summary("Replay Events")
            .request(json::<EventReplayRequest>())
            .response(json::<EventReplayResponse>()),
        Operation::get(
            "/api/v1/admin/events/replay/{session_id}/status",
            "admin-events",
        )
        .summary("Stream Replay Status")
        .response(Body::EventStream),
    ]
}

/// The dead-letter queue (ours; not in the reference contract).
pub fn dlq() -> Vec<Operation> {
    const T: &str = "dlq";
    vec![
        Operation::get("/api/v1/dlq/messages", T)
            .summary("List DLQ Messages")
            .query::<params::DlqMessagesQuery>()
            .response(json::<DlqMessageListResponse>()),
        Operation::get("/api/v1/dlq/messages/{message_id}", T)
            .summary("Get DLQ Message")
            .response(json::<DlqMessageResponse>()),
        Operation::post("/api/v1/dlq/messages/{message_id}/retry", T)
            .summary("Retry DLQ Message")
            .response(json::<DlqRetryResponse>()),
        Operation::post("/api/v1/dlq/messages/{message_id}/discard", T)
            .summary("Discard DLQ Message")
            .request(json::<DlqDiscardRequest>())
            .response(json::<DlqDiscardResponse>()),
        Operation::get("/api/v1/dlq/stats", T)
            .summary("DLQ Statistics")
            .response(json::<DlqStatsResponse>()),
    ]
}
