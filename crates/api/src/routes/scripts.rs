//! Saved scripts: create, list, get, update and delete, each private to its owner (another
//! user's script answers 404 like a missing one). Saves and deletes emit `script_saved` and
//! `script_deleted`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventPayload};
use integr8s_core::ports::SavedScript;
use serde::{Deserialize, Serialize};

use super::submit::MAX_SCRIPT_CHARS;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ValidationIssue};
use crate::extract::{AppJson, AppPath, QueryPairs};
use crate::quotas;
use crate::state::AppState;

/// Longest accepted script name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Longest accepted `lang` / `lang_version`, in characters.
const MAX_LANG_CHARS: usize = 64;
/// Scripts per page of the listing unless `limit` says otherwise, and the most `limit` may ask.
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/scripts", get(list).post(create))
        .route(
            "/api/v1/scripts/{script_id}",
            get(read).put(update).delete(remove),
        )
}

/// The contract's `SavedScriptResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SavedScriptResponse {
    pub script_id: String,
    pub name: String,
    pub script: String,
    pub lang: String,
    pub lang_version: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SavedScript> for SavedScriptResponse {
    fn from(s: SavedScript) -> Self {
        Self {
            script_id: s.script_id,
            name: s.name,
            script: s.script,
            lang: s.lang,
            lang_version: s.lang_version,
            description: s.description,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The contract's `SavedScriptListResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SavedScriptListResponse {
    pub scripts: Vec<SavedScriptResponse>,
    /// Every script of the user, across pages (an integr8s extension).
    pub total: u64,
}

fn default_lang() -> String {
    "python".to_owned()
}

fn default_version() -> String {
    "3.11".to_owned()
}

/// The contract's `SavedScriptCreateRequest`; unknown fields are ignored.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SavedScriptCreateRequest {
    name: String,
    script: String,
    #[serde(default = "default_lang")]
    lang: String,
    #[serde(default = "default_version")]
    lang_version: String,
    #[serde(default)]
    description: Option<String>,
}

/// The contract's `SavedScriptUpdate`: absent or null fields keep their value (its
/// `updated_at` is set by the server, so a client's value is ignored).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SavedScriptUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    lang_version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn too_long(field: &str, max: usize) -> ValidationIssue {
    ValidationIssue::new(
        &["body", field],
        "string_too_long",
        format!("String should have at most {max} characters"),
    )
}

fn too_short(field: &str) -> ValidationIssue {
    ValidationIssue::new(
        &["body", field],
        "string_too_short",
        "String should have at least 1 character",
    )
}

/// Checks the fields of a script about to be stored, the text against the byte quota
/// `max_bytes` too; all problems are reported at once.
fn validate(script: &SavedScript, max_bytes: usize) -> Result<(), ApiError> {
    let mut issues = Vec::new();
    let mut check = |field: &str, value: &str, max: usize, required: bool| {
        if required && value.trim().is_empty() {
            issues.push(too_short(field));
        } else if value.chars().count() > max {
            issues.push(too_long(field, max));
        }
    };
    check("name", &script.name, MAX_NAME_CHARS, true);
    check("script", &script.script, MAX_SCRIPT_CHARS, false);
    check("lang", &script.lang, MAX_LANG_CHARS, true);
    check("lang_version", &script.lang_version, MAX_LANG_CHARS, true);
    if let Some(description) = &script.description {
        check("description", description, MAX_DESCRIPTION_CHARS, false);
    }
    if script.script.len() > max_bytes && script.script.chars().count() <= MAX_SCRIPT_CHARS {
        issues.push(quotas::too_large(&["body", "script"], max_bytes));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(issues))
    }
}

fn script_not_found(script_id: &str) -> ApiError {
    ApiError::domain(
        StatusCode::NOT_FOUND,
        "ScriptNotFoundError",
        format!("Script {script_id} not found"),
    )
}

/// Emits an audit event about a script. The script is already stored, so a failure to record
/// the event is logged rather than failing the request.
async fn emit(state: &AppState, user_id: &str, script_id: &str, payload: EventPayload) {
    let env = Envelope::new(payload, state.outbox.metadata(Some(user_id.to_owned())))
        .with_aggregate(script_id);
    if let Err(e) = state.outbox.emit_envelope(&env).await {
        tracing::warn!(%script_id, error = %e, "could not record a script event");
    }
}

async fn emit_saved(state: &AppState, script: &SavedScript) {
    let payload = EventPayload::ScriptSaved {
        script_id: script.script_id.clone(),
        user_id: script.user_id.clone(),
        title: script.name.clone(),
        language: script.lang.clone(),
    };
    emit(state, &script.user_id, &script.script_id, payload).await;
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppJson(body): AppJson<SavedScriptCreateRequest>,
) -> Result<Json<SavedScriptResponse>, ApiError> {
    let now = integr8s_core::now();
    let script = SavedScript {
        script_id: integr8s_core::new_id(),
        user_id: user.user_id,
        name: body.name,
        script: body.script,
        lang: body.lang,
        lang_version: body.lang_version,
        description: body.description,
        created_at: now,
        updated_at: now,
    };
    let caps = &state.config.quotas;
    validate(&script, caps.max_saved_script_bytes)?;
    if state.store.count_scripts(&script.user_id).await? >= caps.max_saved_scripts {
        return Err(quotas::count_exceeded(
            caps.max_saved_scripts,
            "saved scripts",
        ));
    }
    state.store.create_script(&script).await?;
    emit_saved(&state, &script).await;
    Ok(Json(script.into()))
}

/// Pages of `limit` (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) from `offset`; `total`
/// counts every script of the user.
async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: QueryPairs,
) -> Result<Json<SavedScriptListResponse>, ApiError> {
    let limit = query.int_in("limit", DEFAULT_PAGE, 1, MAX_PAGE)?;
    let offset = query.int_in("offset", 0, 0, i64::from(u32::MAX))?;
    let scripts = state
        .store
        .list_scripts_page(
            &user.user_id,
            u32::try_from(limit).unwrap_or(1),
            u32::try_from(offset).unwrap_or(u32::MAX),
        )
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let total = state.store.count_scripts(&user.user_id).await?;
    Ok(Json(SavedScriptListResponse { scripts, total }))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(script_id): AppPath<String>,
) -> Result<Json<SavedScriptResponse>, ApiError> {
    let script = state
        .store
        .script(&script_id, &user.user_id)
        .await?
        .ok_or_else(|| script_not_found(&script_id))?;
    Ok(Json(script.into()))
}

async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(script_id): AppPath<String>,
    AppJson(body): AppJson<SavedScriptUpdate>,
) -> Result<Json<SavedScriptResponse>, ApiError> {
    let mut script = state
        .store
        .script(&script_id, &user.user_id)
        .await?
        .ok_or_else(|| script_not_found(&script_id))?;
    if let Some(name) = body.name {
        script.name = name;
    }
    if let Some(text) = body.script {
        script.script = text;
    }
    if let Some(lang) = body.lang {
        script.lang = lang;
    }
    if let Some(version) = body.lang_version {
        script.lang_version = version;
    }
    if body.description.is_some() {
        script.description = body.description;
    }
    script.updated_at = integr8s_core::now();
    validate(&script, state.config.quotas.max_saved_script_bytes)?;
    if !state.store.update_script(&script).await? {
        return Err(script_not_found(&script_id));
    }
    emit_saved(&state, &script).await;
    Ok(Json(script.into()))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    AppPath(script_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_script(&script_id, &user.user_id).await? {
        return Err(script_not_found(&script_id));
    }
    let payload = EventPayload::ScriptDeleted {
        script_id: script_id.clone(),
        user_id: user.user_id.clone(),
        deleted_by: Some(user.user_id.clone()),
    };
    emit(&state, &user.user_id, &script_id, payload).await;
    Ok(StatusCode::NO_CONTENT)
}
