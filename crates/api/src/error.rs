//! The one error type of the HTTP layer and its mapping to the contract's JSON shapes.
//!
//! Domain errors answer `{"detail": msg, "type": "<Name>Error"}`, input errors answer the
//! FastAPI/pydantic list `{"detail": [{"loc", "msg", "type"}]}`, and server-side failures answer
//! a generic detail while the real cause goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use integr8s_core::{ErrorCode, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use thiserror::Error;

/// One entry of a 422 validation answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationIssue {
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationIssue {
    /// An issue at `loc` (e.g. `["body", "script"]`).
    pub fn new(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| Value::from(*s)).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }

    /// Appends a list index or field to the location.
    pub fn at(mut self, part: impl Into<Value>) -> Self {
        self.loc.push(part.into());
        self
    }
}

/// Every failure a handler can answer with.
#[derive(Debug, Error)]
pub enum ApiError {
    /// A domain error: `{"detail", "type"}` with the given status.
    #[error("{detail}")]
    Domain {
        status: StatusCode,
        kind: &'static str,
        detail: String,
    },
    /// Invalid input (422, pydantic list shape).
    #[error("request validation failed")]
    Validation(Vec<ValidationIssue>),
    /// A plain `{"detail"}` answer (no `type`), as FastAPI's HTTPException gives.
    #[error("{detail}")]
    Plain { status: StatusCode, detail: String },
    /// Back-pressure: 429 with `Retry-After`.
    #[error("{detail}")]
    TooManyRequests {
        kind: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// A dependency is down; the client may retry (503, generic detail).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500, generic detail).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn domain(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Domain {
            status,
            kind,
            detail: detail.into(),
        }
    }

    pub fn not_authenticated() -> Self {
        Self::domain(
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequiredError",
            "Not authenticated",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::domain(
            StatusCode::UNAUTHORIZED,
            "InvalidCredentialsError",
            "Invalid credentials",
        )
    }

    pub fn access_denied() -> Self {
        Self::domain(StatusCode::FORBIDDEN, "ForbiddenError", "Access denied")
    }

    pub fn admin_required(username: &str) -> Self {
        Self::domain(
            StatusCode::FORBIDDEN,
            "AdminAccessRequiredError",
            format!("Admin access required for user '{username}'"),
        )
    }

    pub fn execution_not_found(execution_id: &str) -> Self {
        Self::domain(
            StatusCode::NOT_FOUND,
            "ExecutionNotFoundError",
            format!("Execution {execution_id} not found"),
        )
    }

    pub fn invalid_state(detail: impl Into<String>) -> Self {
        Self::domain(StatusCode::BAD_REQUEST, "InvalidStateError", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::domain(StatusCode::CONFLICT, "ConflictError", detail)
    }

    pub fn csrf_failed() -> Self {
        Self::Plain {
            status: StatusCode::FORBIDDEN,
            detail: "CSRF validation failed".to_owned(),
        }
    }

    /// 413 naming the limit in MB, as the original's middleware does.
    pub fn payload_too_large(max_bytes: usize) -> Self {
        let mb = max_bytes as f64 / (1024.0 * 1024.0);
        Self::Plain {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!("Request too large. Maximum size is {mb:.1}MB"),
        }
    }

    pub fn not_found_route() -> Self {
        Self::Plain {
            status: StatusCode::NOT_FOUND,
            detail: "Not Found".to_owned(),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self::Plain {
            status: StatusCode::METHOD_NOT_ALLOWED,
            detail: "Method Not Allowed".to_owned(),
        }
    }

    /// A single validation issue.
    pub fn invalid(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self::Validation(vec![ValidationIssue::new(loc, kind, msg)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Domain { status, .. } | ApiError::Plain { status, .. } => *status,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.code() {
            ErrorCode::NotFound => {
                ApiError::domain(StatusCode::NOT_FOUND, "NotFoundError", "Not found")
            }
            ErrorCode::Conflict => ApiError::conflict("Resource already exists"),
            ErrorCode::Unavailable => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<integr8s_core::error::BusError> for ApiError {
    fn from(e: integr8s_core::error::BusError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Domain { kind, detail, .. } => json!({"detail": detail, "type": kind}),
            ApiError::Validation(issues) => json!({ "detail": issues }),
            ApiError::Plain { detail, .. } => json!({ "detail": detail }),
            ApiError::TooManyRequests { kind, detail, .. } => {
                json!({"detail": detail, "type": kind})
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "request failed: dependency unavailable");
                json!({"detail": "Service temporarily unavailable", "type": "ServiceUnavailableError"})
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed: internal error");
                json!({"detail": "Internal server error", "type": "InternalServerError"})
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
