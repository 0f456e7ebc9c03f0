//! The execution pipeline: the coordinator (queue admission and dispatch), the saga orchestrator
//! (validate, allocate, start the run, compensate), the local worker (runs scripts through an
//! [`Executor`](integr8s_core::ports::Executor)) and the result processor (stores outcomes).
//!
//! Every component depends on core ports only and consumes the bus as its own consumer group,
//! so any of them can run in any process. Handlers are idempotent: the bus delivers at least
//! once, and after a restart everything past a group's committed offset is delivered again.

mod config;
pub mod consumer;
mod coordinator;
pub mod dlq;
mod error;
pub mod notifications;
pub mod replay;
mod results;
pub mod retention;
mod saga;
mod worker;

pub use config::{EngineConfig, WorkerConfig};
pub use coordinator::Coordinator;
pub use error::EngineError;
pub use results::ResultProcessor;
pub use saga::SagaOrchestrator;
pub use worker::LocalWorker;

/// How a finished run becomes its outcome event (docs/pipeline.md, "Outcome mapping"), shared
/// by every worker so that clients cannot tell the executors apart.
pub mod run_outcome {
    pub use crate::worker::outcome::{exit_code_of, map_report, system_failure, CancelRequest};
}

/// Consumer group names, one per component.
pub mod groups {
    pub const COORDINATOR: &str = "coordinator";
    pub const SAGA_ORCHESTRATOR: &str = "saga-orchestrator";
    pub const LOCAL_WORKER: &str = "local-worker";
    pub const RESULT_PROCESSOR: &str = "result-processor";
}
