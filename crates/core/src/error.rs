//! Error codes shared by every port, and the store's error type.

use thiserror::Error;

/// The category of a failure; the API maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Validation,
    Locked,
    TooManyRequests,
    Unavailable,
    Internal,
}

/// Errors of the store port. Adapters classify database errors once, into these.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::Corrupt(_) | StoreError::Other(_) => ErrorCode::Internal,
        }
    }
}

/// Errors of the event bus port.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    #[error("event store error while delivering: {0}")]
    Store(#[from] StoreError),
    #[error("bus closed")]
    Closed,
}

impl BusError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }
}
