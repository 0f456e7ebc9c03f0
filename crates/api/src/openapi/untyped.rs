//! Routes documented without derived schemas yet (method, path, tag and summary only). Move an
//! entry to a typed group of `operations.rs` once its request/response types derive
//! `schemars::JsonSchema`; the ignored strict test lists what is still untyped.

use super::{Body, Operation};

pub fn untyped() -> Vec<Operation> {
    vec![
        Operation::delete("/api/v1/admin/events/{event_id}", "admin-events")
            .summary("Delete Event"),
        Operation::delete("/api/v1/admin/users/{user_id}", "users").summary("Delete User"),
        Operation::delete("/api/v1/notifications/{notification_id}", "notifications")
            .summary("Delete Notification"),
        Operation::delete("/api/v1/scripts/{script_id}", "scripts").summary("Delete Saved Script"),
        Operation::get(
            "/api/v1/admin/events/export/{export_format}",
            "admin-events",
        )
        .summary("Export Events"),
        Operation::get(
            "/api/v1/admin/events/replay/{session_id}/status",
            "admin-events",
        )
        .summary("Stream Replay Status")
        .response(Body::EventStream),
        Operation::get("/api/v1/admin/events/stats", "admin-events").summary("Get Event Stats"),
        Operation::get("/api/v1/admin/events/{event_id}", "admin-events")
            .summary("Get Event Detail"),
        Operation::get("/api/v1/admin/executions/", "admin-executions").summary("List Executions"),
        Operation::get("/api/v1/admin/executions/queue", "admin-executions")
            .summary("Get Queue Status"),
        Operation::get("/api/v1/admin/settings/", "settings").summary("Get System Settings"),
        Operation::get("/api/v1/admin/settings/audit", "admin")
            .summary("System Settings Audit Log"),
        Operation::get("/api/v1/admin/users/", "users").summary("List Users"),
        Operation::get("/api/v1/admin/users/{user_id}", "users").summary("Get User"),
        Operation::get("/api/v1/admin/users/{user_id}/overview", "users")
            .summary("Get User Overview"),
        Operation::get("/api/v1/dlq/messages", "dlq").summary("List DLQ Messages"),
        Operation::get("/api/v1/dlq/messages/{message_id}", "dlq").summary("Get DLQ Message"),
        Operation::get("/api/v1/dlq/stats", "dlq").summary("DLQ Statistics"),
        Operation::get("/api/v1/events/notifications/stream", "sse")
            .summary("Notification Stream")
            .response(Body::EventStream),
        Operation::get("/api/v1/notifications", "notifications").summary("Get Notifications"),
        Operation::get("/api/v1/notifications/subscriptions", "notifications")
            .summary("Get Subscriptions"),
        Operation::get("/api/v1/notifications/unread-count", "notifications")
            .summary("Get Unread Count"),
        Operation::get("/api/v1/replay/sessions", "Event Replay").summary("List Replay Sessions"),
        Operation::get("/api/v1/replay/sessions/{session_id}", "Event Replay")
            .summary("Get Replay Session"),
        Operation::get("/api/v1/sagas/", "sagas").summary("List Sagas"),
        Operation::get("/api/v1/sagas/execution/{execution_id}", "sagas")
            .summary("Get Execution Sagas"),
        Operation::get("/api/v1/sagas/{saga_id}", "sagas").summary("Get Saga Status"),
        Operation::get("/api/v1/scripts", "scripts").summary("List Saved Scripts"),
        Operation::get("/api/v1/scripts/{script_id}", "scripts").summary("Get Saved Script"),
        Operation::get("/api/v1/user/settings/", "user-settings").summary("Get User Settings"),
        Operation::get("/api/v1/user/settings/history", "user-settings")
            .summary("Get Settings History"),
        Operation::post("/api/v1/admin/events/browse", "admin-events")
            .summary("Browse Events")
            .request(Body::Untyped),
        Operation::post("/api/v1/admin/events/replay", "admin-events")
            .summary("Replay Events")
            .request(Body::Untyped),
        Operation::post("/api/v1/admin/settings/reset", "settings")
            .summary("Reset System Settings"),
        Operation::post("/api/v1/admin/users/", "users")
            .summary("Create User")
            .request(Body::Untyped),
        Operation::post("/api/v1/admin/users/{user_id}/reset-password", "users")
            .summary("Reset User Password")
            .request(Body::Untyped),
        Operation::post("/api/v1/admin/users/{user_id}/unlock", "users").summary("Unlock User"),
        Operation::post("/api/v1/dlq/messages/{message_id}/discard", "dlq")
            .summary("Discard DLQ Message"),
        Operation::post("/api/v1/dlq/messages/{message_id}/retry", "dlq")
            .summary("Retry DLQ Message"),
        Operation::post("/api/v1/notifications/mark-all-read", "notifications")
            .summary("Mark All Read"),
        Operation::post("/api/v1/replay/cleanup", "Event Replay").summary("Cleanup Old Sessions"),
        Operation::post("/api/v1/replay/sessions", "Event Replay")
            .summary("Create Replay Session")
            .request(Body::Untyped),
        Operation::post(
            "/api/v1/replay/sessions/{session_id}/cancel",
            "Event Replay",
        )
        .summary("Cancel Replay Session"),
        Operation::post("/api/v1/replay/sessions/{session_id}/pause", "Event Replay")
            .summary("Pause Replay Session"),
        Operation::post(
            "/api/v1/replay/sessions/{session_id}/resume",
            "Event Replay",
        )
        .summary("Resume Replay Session"),
        Operation::post("/api/v1/replay/sessions/{session_id}/start", "Event Replay")
            .summary("Start Replay Session"),
        Operation::post("/api/v1/sagas/{saga_id}/cancel", "sagas").summary("Cancel Saga"),
        Operation::post("/api/v1/scripts", "scripts")
            .summary("Create Saved Script")
            .request(Body::Untyped),
        Operation::post("/api/v1/user/settings/restore", "user-settings")
            .summary("Restore Settings")
            .request(Body::Untyped),
        Operation::put(
            "/api/v1/admin/executions/{execution_id}/priority",
            "admin-executions",
        )
        .summary("Update Priority")
        .request(Body::Untyped),
        Operation::put("/api/v1/admin/settings/", "settings")
            .summary("Update System Settings")
            .request(Body::Untyped),
        Operation::put("/api/v1/admin/users/{user_id}", "users")
            .summary("Update User")
            .request(Body::Untyped),
        Operation::put(
            "/api/v1/notifications/subscriptions/{channel}",
            "notifications",
        )
        .summary("Update Subscription")
        .request(Body::Untyped),
        Operation::put(
            "/api/v1/notifications/{notification_id}/read",
            "notifications",
        )
        .summary("Mark Notification Read"),
        Operation::put("/api/v1/scripts/{script_id}", "scripts")
            .summary("Update Saved Script")
            .request(Body::Untyped),
        Operation::put("/api/v1/user/settings/", "user-settings")
            .summary("Update User Settings")
            .request(Body::Untyped),
        Operation::put("/api/v1/user/settings/custom/{key}", "user-settings")
            .summary("Update Custom Setting")
            .request(Body::Untyped),
        Operation::put("/api/v1/user/settings/editor", "user-settings")
            .summary("Update Editor Settings")
            .request(Body::Untyped),
        Operation::put("/api/v1/user/settings/notifications", "user-settings")
            .summary("Update Notification Settings")
            .request(Body::Untyped),
        Operation::put("/api/v1/user/settings/theme", "user-settings")
            .summary("Update Theme")
            .request(Body::Untyped),
    ]
}
