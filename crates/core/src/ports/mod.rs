//! Ports: the traits that engine and API code depend on. Each has one conformance suite
//! (`crate::testsuite`, feature `testsuite`) that every adapter passes.

pub mod admin;
pub mod bus;
pub mod capabilities;
pub mod dlq;
pub mod executor;
pub mod kv;
pub mod notifications;
pub mod offsets;
pub mod ratelimit;
pub mod replay;
pub mod retention;
pub mod scripts;
pub mod settings;
pub mod store;
pub mod workers;

pub use admin::{EventQueryStore, SystemSettingsStore, UserAdminStore};
pub use bus::{Delivery, EventBus};
pub use capabilities::{
    BusLog, CancelStore, CoordinatorStore, DeadLetterStore, DlqProcessorStore, K8sWorkerStore,
    LocalWorkerStore, NotificationDeliveryStore, NotificationServiceStore, PodMonitorStore,
    ReplayRunnerStore, ResultProcessorStore, RetentionSweeperStore, RoleCapabilities,
    SagaOrchestratorStore,
};
pub use dlq::DlqStore;
pub use executor::{
    ExecError, Executor, ExecutorHealth, RunControl, RunOutcome, RunProgress, RunReport, RunSpec,
};
pub use kv::KeyValue;
pub use notifications::{CreateNotification, DeliveryOutcome, NotificationStore};
pub use offsets::ConsumerOffsetStore;
pub use ratelimit::{RateLimitStore, RateLimiter};
pub use replay::ReplayStore;
pub use retention::{RetentionKind, RetentionStore};
pub use scripts::{SavedScript, ScriptStore};
pub use settings::UserSettingsStore;
pub use store::{
    AllocationStore, CreateExecution, EventStore, ExecutionStore, NewUser, QueueEntry, QueuePolicy,
    QueueStore, SagaFilter, SagaStore, ScheduleClaim, Store, UserStore,
};
pub use workers::{OwnedRun, RuntimeReport, WorkerLease, WorkerReport, WorkerStore};
