//! Typed operations of the admin groups: users, executions, events (browse, statistics, detail,
//! delete, export) and system settings. Replay and rate limits are listed elsewhere.

use integr8s_core::system_settings::SystemSettings;

use super::{json, params, Body, Operation};
use crate::routes::admin::events_schema as ev;
use crate::routes::admin::executions as ex;
use crate::routes::admin::rate_limits::MessageResponse;
use crate::routes::admin::settings::{SettingsAuditLogResponse, SettingsInput};
use crate::routes::admin::user_overview::AdminUserOverview;
use crate::routes::admin::users as us;
use crate::routes::auth::UserResponse;

/// Every typed admin operation of this module.
pub fn admin() -> Vec<Operation> {
    let mut all = users();
    all.extend(executions());
    all.extend(events());
    all.extend(settings());
    all
}

fn users() -> Vec<Operation> {
    const T: &str = "users";
    vec![
        Operation::get("/api/v1/admin/users/", T)
            .summary("List Users")
            .query::<params::AdminUsersQuery>()
            .response(json::<us::UserListResponse>()),
        Operation::post("/api/v1/admin/users/", T)
            .summary("Create User")
            .request(json::<us::AdminUserCreate>())
            .response(json::<UserResponse>()),
        Operation::get("/api/v1/admin/users/{user_id}", T)
            .summary("Get User")
            .response(json::<UserResponse>()),
        Operation::put("/api/v1/admin/users/{user_id}", T)
            .summary("Update User")
            .request(json::<us::UserUpdateRequest>())
            .response(json::<UserResponse>()),
        Operation::delete("/api/v1/admin/users/{user_id}", T)
            .summary("Delete User")
            .query::<params::DeleteUserQuery>()
            .response(json::<us::DeleteUserResponse>()),
        Operation::get("/api/v1/admin/users/{user_id}/overview", T)
            .summary("Get User Overview")
            .response(json::<AdminUserOverview>()),
        Operation::post("/api/v1/admin/users/{user_id}/reset-password", T)
            .summary("Reset User Password")
            .request(json::<us::PasswordResetRequest>())
            .response(json::<MessageResponse>()),
        Operation::post("/api/v1/admin/users/{user_id}/unlock", T)
            .summary("Unlock User")
            .response(json::<us::UnlockResponse>()),
    ]
}

fn executions() -> Vec<Operation> {
    const T: &str = "admin-executions";
    vec![
        Operation::get("/api/v1/admin/executions/", T)
            .summary("List Executions")
            .query::<params::AdminExecutionsQuery>()
            .response(json::<ex::AdminExecutionListResponse>()),
        Operation::get("/api/v1/admin/executions/queue", T)
            .summary("Get Queue Status")
            .response(json::<ex::QueueStatusResponse>()),
        Operation::put("/api/v1/admin/executions/{execution_id}/priority", T)
            .summary("Update Priority")
            .request(json::<ex::PriorityUpdateRequest>())
            .response(json::<ex::AdminExecutionResponse>()),
    ]
}

fn events() -> Vec<Operation> {
    const T: &str = "admin-events";
    vec![
        Operation::post("/api/v1/admin/events/browse", T)
            .summary("Browse Events")
            .request(json::<ev::EventBrowseRequest>())
            .response(json::<ev::EventBrowseResponse>()),
        Operation::get("/api/v1/admin/events/stats", T)
            .summary("Get Event Stats")
            .query::<params::EventStatsQuery>()
            .response(json::<ev::EventStatsResponse>()),
        Operation::get("/api/v1/admin/events/export/{export_format}", T)
            .summary("Export Events")
            .query::<params::EventExportQuery>()
            .response(Body::Downloads(&["text/csv", "application/json"])),
        Operation::get("/api/v1/admin/events/{event_id}", T)
            .summary("Get Event Detail")
            .response(json::<ev::EventDetailResponse>()),
        Operation::delete("/api/v1/admin/events/{event_id}", T)
            .summary("Delete Event")
            .response(json::<ev::EventDeleteResponse>()),
    ]
}

fn settings() -> Vec<Operation> {
    const T: &str = "settings";
    vec![
        Operation::get("/api/v1/admin/settings/", T)
            .summary("Get System Settings")
            .response(json::<SystemSettings>()),
        Operation::put("/api/v1/admin/settings/", T)
            .summary("Update System Settings")
            .request(json::<SettingsInput>())
            .response(json::<SystemSettings>()),
        Operation::post("/api/v1/admin/settings/reset", T)
            .summary("Reset System Settings")
            .response(json::<SystemSettings>()),
        Operation::get("/api/v1/admin/settings/audit", T)
            .summary("System Settings Audit Log")
            .query::<params::SettingsAuditQuery>()
            .response(json::<SettingsAuditLogResponse>()),
    ]
}
