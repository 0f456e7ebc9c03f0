//! Errors of the Kubernetes executor, and how a failed API call is classified.

use integr8s_core::error::{ErrorCode, StoreError};
use integr8s_engine::EngineError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum K8sError {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// The Kubernetes API refused or failed a call.
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl K8sError {
    pub fn code(&self) -> ErrorCode {
        match self {
            K8sError::Config(_) => ErrorCode::BadRequest,
            K8sError::Api(_) => ErrorCode::Unavailable,
            K8sError::Store(e) => e.code(),
            K8sError::Engine(e) => e.code(),
        }
    }
}

/// What a failed create call means for the execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateFailure {
    /// A ResourceQuota of the namespace has no room: the run cannot start (`resource_limit`).
    QuotaExceeded(String),
    /// The API refused the call for good (forbidden by RBAC, invalid spec): `system_error`.
    Refused(String),
    /// The API is unreachable or failing; worth retrying.
    Unavailable(String),
}

impl CreateFailure {
    pub fn classify(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                if status.code == 403 && message.contains("exceeded quota") {
                    CreateFailure::QuotaExceeded(message)
                } else if status.code == 429 || status.code >= 500 {
                    CreateFailure::Unavailable(format!("{} {}", status.code, message))
                } else {
                    CreateFailure::Refused(format!("{} {}: {message}", status.code, status.reason))
                }
            }
            other => CreateFailure::Unavailable(other.to_string()),
        }
    }
}

/// Whether an API error says the object is not there (404).
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether an API error says the object exists already (409 AlreadyExists).
pub(crate) fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}
