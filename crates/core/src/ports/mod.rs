//! Ports: the traits that engine and API code depend on. Each has one conformance suite
//! (`crate::testsuite`, feature `testsuite`) that every adapter passes.

pub mod bus;
pub mod executor;
pub mod kv;
pub mod store;

pub use bus::{Delivery, EventBus};
pub use executor::{
    ExecError, Executor, ExecutorHealth, RunControl, RunOutcome, RunReport, RunSpec,
};
pub use kv::KeyValue;
pub use store::{
    AllocationStore, CreateExecution, EventStore, ExecutionStore, NewUser, QueueEntry, QueuePolicy,
    QueueStore, SagaFilter, SagaStore, Store, UserStore,
};
