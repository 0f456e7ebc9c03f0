//! Domain types, events, ports and the conformance suites of integr8s.
//!
//! Engine and API code depend on the traits in [`ports`], never on an adapter. Only the binary's
//! composition root names concrete adapters.

pub mod cancel;
pub mod effective_settings;
pub mod error;
pub mod event;
pub mod execution;
pub mod notification;
pub mod outbox;
pub mod ports;
pub mod runtime;
pub mod saga;
pub mod system_settings;
pub mod user;
pub mod user_settings;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use error::{ErrorCode, StoreError};
pub use event::{Envelope, EventMetadata, EventPayload, EventType, StoredEvent};
pub use execution::{ErrorType, Execution, ExecutionStatus, Priority, ResourceUsage, RunLimits};

/// Current UTC time. All domain timestamps are UTC.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// A new random identifier (UUID v4, hyphenated), as the contract uses for ids.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
