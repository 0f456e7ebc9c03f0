//! The engine's error type.

use integr8s_core::error::{BusError, ErrorCode, StoreError};
use thiserror::Error;

/// Why a component stopped or a handler failed.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The bus ended a subscription while the component was still meant to run.
    #[error("the subscription of consumer group '{group}' ended")]
    SubscriptionEnded { group: String },
    /// A service the handler depends on (e.g. the Kubernetes API) failed; worth retrying.
    #[error("{service} unavailable: {detail}")]
    Dependency {
        service: &'static str,
        detail: String,
    },
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Store(e) => e.code(),
            EngineError::Bus(e) => e.code(),
            EngineError::SubscriptionEnded { .. } | EngineError::Dependency { .. } => {
                ErrorCode::Unavailable
            }
        }
    }
}
