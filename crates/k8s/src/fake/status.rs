//! `Status` objects, as the API server answers errors (and some deletions).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An API error: the HTTP status carries a `Status` body with the same code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<(String, String)>,
}

impl ApiError {
    pub fn not_found(resource: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{resource} \"{name}\" not found"),
            details: Some((resource.to_owned(), name.to_owned())),
        }
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{resource} \"{name}\" already exists"),
            details: Some((resource.to_owned(), name.to_owned())),
        }
    }

    pub fn invalid(resource: &str, name: &str, cause: &str) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{resource} \"{name}\" is invalid: {cause}"),
            details: Some((resource.to_owned(), name.to_owned())),
        }
    }

    pub fn bad_request(message: String) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message,
            details: None,
        }
    }

    pub fn gone(message: String) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message,
            details: None,
        }
    }

    pub fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((kind, name)) = &self.details {
            status["details"] = json!({ "name": name, "kind": kind });
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.body())).into_response()
    }
}

/// The `Status` of a successful deletion.
pub fn deleted(resource: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": { "name": name, "kind": resource, "uid": uid },
    })
}
