//! `/api/v1/admin/users/`: list and search, create with a role, update, delete with cascade
//! counts, password reset and lockout release. The overview lives in `user_overview.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use integr8s_core::ports::admin::{UserListFilter, UserUpdate};
use integr8s_core::ports::NewUser;
use integr8s_core::user::{Role, User};
use integr8s_core::StoreError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rate_limits::MessageResponse;
use super::settings::{add_slash, effective_settings};
use crate::auth::{guard, lockout, session, AdminUser};
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppJson, AppPath, QueryPairs};
use crate::routes::auth::{email_issue, UserResponse};
use crate::state::AppState;

/// The contract's floor for passwords set by an admin.
const ADMIN_PASSWORD_MIN: usize = 8;

/// The shortest password an admin may set: the configured minimum, never under the floor.
async fn admin_password_min(state: &AppState) -> Result<usize, ApiError> {
    Ok(ADMIN_PASSWORD_MIN.max(effective_settings(state).await?.password_min_length as usize))
}

/// Whether `user` is an active admin and no other active admin exists.
async fn is_last_active_admin(state: &AppState, user: &User) -> Result<bool, ApiError> {
    if !(user.is_admin() && user.is_active) {
        return Ok(false);
    }
    let mut offset = 0u32;
    loop {
        let filter = UserListFilter {
            search: None,
            role: Some(Role::Admin),
            limit: 500,
            offset,
        };
        let (page, _) = state.store.list_users(&filter).await?;
        if page
            .iter()
            .any(|u| u.is_active && u.is_admin() && u.user_id != user.user_id)
        {
            return Ok(false);
        }
        if page.len() < 500 {
            return Ok(true);
        }
        offset = offset.saturating_add(500);
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/users", any(add_slash))
        .route("/api/v1/admin/users/", get(list).post(create))
        .route(
            "/api/v1/admin/users/{user_id}",
            get(read).put(update).delete(remove),
        )
        .route(
            "/api/v1/admin/users/{user_id}/overview",
            get(super::user_overview::overview),
        )
        .route(
            "/api/v1/admin/users/{user_id}/reset-password",
            post(reset_password),
        )
        .route("/api/v1/admin/users/{user_id}/unlock", post(unlock))
}

pub(super) fn user_not_found(user_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "NotFoundError",
        format!("User {user_id} not found"),
    )
}

pub(super) async fn load_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| user_not_found(user_id))
}

/// The user with its rate-limit summary filled from its override, if any.
pub(super) async fn user_response(state: &AppState, user: User) -> Result<UserResponse, ApiError> {
    let limits = state.store.get_user_rate_limit(&user.user_id).await?;
    let mut response = UserResponse::from(user);
    response.bypass_rate_limit = Some(limits.as_ref().is_some_and(|l| l.bypass_rate_limit));
    response.global_multiplier = Some(limits.as_ref().map_or(1.0, |l| l.global_multiplier));
    response.has_custom_limits = Some(limits.is_some_and(|l| !l.rules.is_empty()));
    Ok(response)
}

fn password_issue(field: &str, password: &str, min: usize) -> Option<ValidationIssue> {
    (password.chars().count() < min).then(|| {
        ValidationIssue::new(
            &["body", field],
            "string_too_short",
            format!("String should have at least {min} characters"),
        )
    })
}

fn username_issue(username: &str) -> Option<ValidationIssue> {
    username.trim().is_empty().then(|| {
        ValidationIssue::new(
            &["body", "username"],
            "string_too_short",
            "String should have at least 1 character",
        )
    })
}

fn role_param(query: &QueryPairs) -> Result<Option<Role>, ApiError> {
    query
        .get("role")
        .map(|raw| {
            Role::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    &["query", "role"],
                    "enum",
                    "Input should be 'user', 'admin' or 'moderator'",
                )
            })
        })
        .transpose()
}

/// The contract's `UserListResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserListResponse {
    pub users: Vec<UserResponse>,
    pub total: u64,
    pub offset: i64,
    pub limit: i64,
}

async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    query: QueryPairs,
) -> Result<Json<UserListResponse>, ApiError> {
    let limit = query.int_in("limit", 100, 1, 1000)?;
    let offset = query.int_in("offset", 0, 0, i64::from(u32::MAX))?;
    let filter = UserListFilter {
        search: query.get("search").map(str::to_owned),
        role: role_param(&query)?,
        limit: u32::try_from(limit).unwrap_or(100),
        offset: u32::try_from(offset).unwrap_or(0),
    };
    let (users, total) = state.store.list_users(&filter).await?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        out.push(user_response(&state, user).await?);
    }
    Ok(Json(UserListResponse {
        users: out,
        total,
        offset,
        limit,
    }))
}

/// The contract's `UserCreate` as an admin sends it: the role and the active flag are honoured.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AdminUserCreate {
    pub username: String,
    #[schemars(email)]
    pub email: String,
    /// At least the system settings' `password_min_length` (and never under 8).
    #[schemars(length(min = 8))]
    pub password: String,
    #[serde(default)]
    pub role: Role,
    #[serde(default = "yes")]
    pub is_active: bool,
}

fn yes() -> bool {
    true
}

fn conflict(field: &str) -> ApiError {
    if field.contains("email") {
        ApiError::conflict("User already exists")
    } else {
        ApiError::conflict("Username already exists")
    }
}

async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppJson(body): AppJson<AdminUserCreate>,
) -> Result<Json<UserResponse>, ApiError> {
    let min = admin_password_min(&state).await?;
    let issues: Vec<_> = [
        username_issue(&body.username),
        email_issue(&body.email),
        password_issue("password", &body.password, min),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    let new_user = NewUser {
        user_id: integr8s_core::new_id(),
        username: body.username.trim().to_owned(),
        email: body.email.trim().to_owned(),
        password_hash: guard::hash_password(&state, body.password).await?,
        role: body.role,
        is_superuser: false,
    };
    let mut user = match state.store.create_user(&new_user).await {
        Ok(user) => user,
        Err(StoreError::Conflict(field)) => return Err(conflict(&field)),
        Err(e) => return Err(e.into()),
    };
    if !body.is_active {
        let deactivate = UserUpdate {
            is_active: Some(false),
            ..UserUpdate::default()
        };
        if let Some(updated) = state.store.update_user(&user.user_id, &deactivate).await? {
            user = updated;
        }
    }
    tracing::info!(admin = %admin.username, user = %user.username, role = user.role.as_str(), "user created");
    Ok(Json(user_response(&state, user).await?))
}

async fn read(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    AppPath(user_id): AppPath<String>,
) -> Result<Json<UserResponse>, ApiError> {
    let user = load_user(&state, &user_id).await?;
    Ok(Json(user_response(&state, user).await?))
}

/// The contract's `UserUpdate`: every field optional.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UserUpdateRequest {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    #[schemars(email)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    #[schemars(length(min = 8))]
    pub password: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(user_id): AppPath<String>,
    AppJson(body): AppJson<UserUpdateRequest>,
) -> Result<Json<UserResponse>, ApiError> {
    let min = admin_password_min(&state).await?;
    let mut issues: Vec<_> = [
        body.username.as_deref().and_then(username_issue),
        body.email.as_deref().and_then(email_issue),
        body.password
            .as_deref()
            .and_then(|p| password_issue("password", p, min)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let demotes = body.role.is_some_and(|r| r != Role::Admin);
    let deactivates = body.is_active == Some(false);
    if (demotes || deactivates)
        && is_last_active_admin(&state, &load_user(&state, &user_id).await?).await?
    {
        let field = if demotes { "role" } else { "is_active" };
        issues.push(ValidationIssue::new(
            &["body", field],
            "value_error",
            "The last active admin cannot be demoted or deactivated",
        ));
    }
    if !issues.is_empty() {
        return Err(ApiError::Validation(issues));
    }
    let password_hash = match body.password {
        Some(p) => Some(guard::hash_password(&state, p).await?),
        None => None,
    };
    let changes = UserUpdate {
        username: body.username.map(|u| u.trim().to_owned()),
        email: body.email.map(|e| e.trim().to_owned()),
        role: body.role,
        is_active: body.is_active,
        password_hash,
    };
    let user = match state.store.update_user(&user_id, &changes).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(user_not_found(&user_id)),
        Err(StoreError::Conflict(field)) => return Err(conflict(&field)),
        Err(e) => return Err(e.into()),
    };
    // A rename, a new password, a role change or a deactivation ends the user's sessions.
    let ends_sessions = changes.username.is_some()
        || changes.password_hash.is_some()
        || changes.role.is_some()
        || changes.is_active == Some(false);
    if ends_sessions {
        session::end_all(&state, &user.user_id).await?;
    }
    tracing::info!(admin = %admin.username, user = %user.username, "user updated");
    Ok(Json(user_response(&state, user).await?))
}

/// The contract's `DeleteUserResponse`: what the deletion removed (zeros without cascade).
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteUserResponse {
    pub user_deleted: bool,
    pub executions: u64,
    pub saved_scripts: u64,
    pub notifications: u64,
    pub user_settings: u64,
    pub events: u64,
    pub sagas: u64,
}

fn cascade_param(query: &QueryPairs) -> Result<bool, ApiError> {
    match query.get("cascade").map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(_) => Err(ApiError::invalid(
            &["query", "cascade"],
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )),
    }
}

async fn remove(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(user_id): AppPath<String>,
    query: QueryPairs,
) -> Result<Json<DeleteUserResponse>, ApiError> {
    let cascade = cascade_param(&query)?;
    if admin.user_id == user_id {
        return Err(ApiError::domain(
            StatusCode::BAD_REQUEST,
            "InvalidStateError",
            "Cannot delete your own account",
        ));
    }
    if is_last_active_admin(&state, &load_user(&state, &user_id).await?).await? {
        return Err(ApiError::invalid_state(
            "Cannot delete the last active admin",
        ));
    }
    let counts = state
        .store
        .delete_user(&user_id, cascade)
        .await?
        .ok_or_else(|| user_not_found(&user_id))?;
    session::end_all(&state, &user_id).await?;
    tracing::info!(admin = %admin.username, %user_id, cascade, ?counts, "user deleted");
    Ok(Json(DeleteUserResponse {
        user_deleted: true,
        executions: counts.executions,
        saved_scripts: counts.saved_scripts,
        notifications: counts.notifications,
        user_settings: counts.user_settings,
        events: counts.events,
        sagas: counts.sagas,
    }))
}

/// The contract's `PasswordResetRequest` (at least 8 characters).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PasswordResetRequest {
    #[schemars(length(min = 8))]
    pub new_password: String,
}

/// The contract's `UnlockResponse`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UnlockResponse {
    pub user_id: String,
    pub message: String,
}

async fn reset_password(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(user_id): AppPath<String>,
    AppJson(body): AppJson<PasswordResetRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    let min = admin_password_min(&state).await?;
    if let Some(issue) = password_issue("new_password", &body.new_password, min) {
        return Err(ApiError::Validation(vec![issue]));
    }
    load_user(&state, &user_id).await?;
    let changes = UserUpdate {
        password_hash: Some(guard::hash_password(&state, body.new_password).await?),
        ..UserUpdate::default()
    };
    state
        .store
        .update_user(&user_id, &changes)
        .await?
        .ok_or_else(|| user_not_found(&user_id))?;
    session::end_all(&state, &user_id).await?;
    tracing::info!(admin = %admin.username, %user_id, "password reset");
    Ok(Json(MessageResponse {
        message: format!("Password reset successfully for user {user_id}"),
    }))
}

async fn unlock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(user_id): AppPath<String>,
) -> Result<Json<UnlockResponse>, ApiError> {
    let user = load_user(&state, &user_id).await?;
    lockout::clear(&state, &user.username).await?;
    tracing::info!(admin = %admin.username, user = %user.username, "account unlocked");
    Ok(Json(UnlockResponse {
        user_id,
        message: "Account unlocked".to_owned(),
    }))
}
