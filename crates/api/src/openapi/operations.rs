//! The operation table: one entry per route. Adding a route means adding its entry here (the
//! tests fail otherwise); request and response types derive `schemars::JsonSchema`.

use integr8s_core::event::Envelope;
use schemars::JsonSchema;

use super::{event_stream_of, form, json, params, Body, Operation};
use crate::routes::admin::rate_limits as rl;
use crate::routes::auth::{LoginResponse, MessageResponse, UserCreate, UserResponse};
use crate::routes::executions::{
    CancelExecutionRequest, CancelResponse, DeleteResponse, ExecutionListResponse,
    ExecutionRequest, ExecutionResult,
};
use crate::routes::health::LivenessResponse;
use crate::routes::runtime::{ExampleScripts, ResourceLimits};
use crate::routes::sse_frame::SseExecutionEvent;
use crate::routes::submit::ExecutionResponse;

/// The login form (read field by field by the handler).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// Every documented operation.
pub fn operations() -> Vec<Operation> {
    let mut all = Vec::new();
    all.extend(auth());
    all.extend(executions());
    all.extend(platform());
    all.extend(admin_rate_limits());
    all.extend(super::admin_ops::admin());
    all.extend(super::features::scripts());
    all.extend(super::features::user_settings());
    all.extend(super::features::sagas());
    all.extend(super::features::notifications());
    all.extend(super::features::replay());
    all.extend(super::features::dlq());
    all.extend(super::untyped::untyped());
    all
}

fn auth() -> Vec<Operation> {
    const T: &str = "authentication";
    vec![
        Operation::post("/api/v1/auth/login", T)
            .summary("Login")
            .request(form::<LoginForm>())
            .response(json::<LoginResponse>()),
        Operation::post("/api/v1/auth/register", T)
            .summary("Register")
            .request(json::<UserCreate>())
            .response(json::<UserResponse>()),
        Operation::get("/api/v1/auth/me", T)
            .summary("Get Current User Profile")
            .response(json::<UserResponse>()),
        Operation::post("/api/v1/auth/logout", T)
            .summary("Logout")
            .response(json::<MessageResponse>()),
    ]
}

fn executions() -> Vec<Operation> {
    const T: &str = "execution";
    vec![
        Operation::post("/api/v1/execute", T)
            .summary("Create Execution")
            .headers(&["Idempotency-Key"])
            .query::<params::ExecuteQuery>()
            .request(json::<ExecutionRequest>())
            .response(json::<ExecutionResponse>()),
        Operation::get("/api/v1/executions/{execution_id}/result", T)
            .summary("Get Result")
            .response(json::<ExecutionResult>()),
        Operation::post("/api/v1/executions/{execution_id}/cancel", T)
            .summary("Cancel Execution")
            .request(json::<CancelExecutionRequest>())
            .response(json::<CancelResponse>()),
        Operation::post("/api/v1/executions/{execution_id}/retry", T)
            .summary("Retry Execution")
            .response(json::<ExecutionResponse>()),
        Operation::get("/api/v1/executions/{execution_id}/events", T)
            .summary("Get Execution Events")
            .query::<params::ExecutionEventsQuery>()
            .response(json::<Vec<Envelope>>()),
        Operation::delete("/api/v1/executions/{execution_id}", T)
            .summary("Delete Execution")
            .response(json::<DeleteResponse>()),
        Operation::get("/api/v1/user/executions", T)
            .summary("Get User Executions")
            .query::<params::UserExecutionsQuery>()
            .response(json::<ExecutionListResponse>()),
        Operation::get("/api/v1/example-scripts", T)
            .summary("Get Example Scripts")
            .response(json::<ExampleScripts>()),
        Operation::get("/api/v1/k8s-limits", T)
            .summary("Get K8S Resource Limits")
            .response(json::<ResourceLimits>()),
    ]
}

fn platform() -> Vec<Operation> {
    vec![
        Operation::get("/api/v1/health/live", "Health")
            .summary("Liveness")
            .response(json::<LivenessResponse>()),
        Operation::get("/api/v1/health/ready", "Health").summary("Readiness"),
        Operation::get("/api/v1/events/executions/{execution_id}", "sse")
            .summary("Execution Events")
            .response(event_stream_of::<SseExecutionEvent>()),
        Operation::get("/openapi.json", "meta").summary("This document"),
        Operation::get("/", "console")
            .summary("The web console's page")
            .response(Body::Download("text/html")),
        Operation::get("/console/{version}/{*path}", "console")
            .summary("A file of the web console (version-addressed, immutable)")
            .response(Body::Downloads(&["text/javascript", "text/css"])),
        Operation::get("/metrics", "meta")
            .summary("Metrics in the Prometheus text format (docs/metrics.md); a bearer token when metrics.token is set")
            .response(Body::Download("text/plain")),
    ]
}

fn admin_rate_limits() -> Vec<Operation> {
    const T: &str = "rate-limits";
    vec![
        Operation::get("/api/v1/admin/rate-limits/defaults", T)
            .summary("Get Default Rate Limit Rules")
            .response(json::<Vec<rl::RateLimitRuleResponse>>()),
        Operation::get("/api/v1/admin/rate-limits/{user_id}", T)
            .summary("Get User Rate Limits")
            .response(json::<rl::UserRateLimitsResponse>()),
        Operation::put("/api/v1/admin/rate-limits/{user_id}", T)
            .summary("Update User Rate Limits")
            .request(json::<rl::RateLimitUpdateRequest>())
            .response(json::<rl::RateLimitUpdateResponse>()),
        Operation::post("/api/v1/admin/rate-limits/{user_id}/reset", T)
            .summary("Reset User Rate Limits")
            .response(json::<rl::MessageResponse>()),
    ]
}
