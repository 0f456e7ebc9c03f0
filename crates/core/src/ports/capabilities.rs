//! What each role may touch in the store: one capability per component, made of the port
//! traits (tables) it uses and nothing more. A component holds an `Arc<dyn …Store>` of its
//! capability, so its constructor tells which tables it can touch and the compiler refuses a
//! call outside them.
//!
//! Every capability is implemented for every type that implements its ports, and [`Store`]
//! (the whole store) has them all as supertraits, so an `Arc<dyn Store>` is handed to any
//! component as it is (trait upcasting).
//!
//! [`Store`]: super::Store

use super::dlq::DlqStore;
use super::notifications::NotificationStore;
use super::offsets::ConsumerOffsetStore;
use super::replay::ReplayStore;
use super::retention::RetentionStore;
use super::store::{AllocationStore, EventStore, ExecutionStore, QueueStore, SagaStore};
use super::workers::WorkerStore;

/// Declares a capability as the sum of its ports, with the blanket implementation.
macro_rules! capability {
    ($(#[$doc:meta])* $name:ident: $first:ident $(+ $rest:ident)*) => {
        $(#[$doc])*
        pub trait $name: $first $(+ $rest)* {}

        impl<T: ?Sized + $first $(+ $rest)*> $name for T {}
    };
}

capability!(
    /// What the store-backed bus adapters need of the database: the event log they deliver
    /// (or relay to Kafka) and the positions of their consumer groups.
    BusLog: EventStore + ConsumerOffsetStore
);

capability!(
    /// The consume loop's dead letters: a failure is stored in the DLQ and announced with an
    /// event, and the redeliveries the DLQ asks for are claimed and settled.
    DeadLetterStore: DlqStore + EventStore
);

capability!(
    /// Asking for a cancel (`crate::cancel`): the execution's compare-and-set and its saga.
    CancelStore: ExecutionStore + SagaStore
);

capability!(
    /// The coordinator: the queue, the executions it admits and schedules, and the event log
    /// to re-announce what a crash left unannounced (the effective concurrency setting comes
    /// from `EffectiveSettings`).
    CoordinatorStore: DeadLetterStore + QueueStore + ExecutionStore
);

capability!(
    /// The saga orchestrator: sagas, the executions they drive and their allocations.
    SagaOrchestratorStore: DeadLetterStore + SagaStore + ExecutionStore + AllocationStore
);

capability!(
    /// The local worker: its lease and the runs it owns (the execution moves with the run's
    /// ownership), and the event log for the cancel catch-up.
    LocalWorkerStore: DeadLetterStore + WorkerStore
);

capability!(
    /// The result processor: writes outcomes, which also frees the queue slot and allocation.
    ResultProcessorStore: DeadLetterStore + ExecutionStore + QueueStore + AllocationStore
);

capability!(
    /// The DLQ processor: retries, discards and purges dead letters.
    DlqProcessorStore: DlqStore
);

capability!(
    /// The event replay runner: replay sessions and the events they select.
    ReplayRunnerStore: ReplayStore
);

capability!(
    /// The notification service: notifications and subscriptions of the executions' owners.
    NotificationServiceStore: NotificationStore + ExecutionStore
);

capability!(
    /// The notification delivery worker: pending deliveries, and the DLQ (with the
    /// notification's event) for the ones that exhausted their attempts.
    NotificationDeliveryStore: DeadLetterStore + NotificationStore
);

capability!(
    /// The retention sweeper: purges under a lease so that sweeps of several processes take turns.
    RetentionSweeperStore: RetentionStore
);

capability!(
    /// The Kubernetes worker: executions it creates pods for, and the event log for what was
    /// already announced.
    K8sWorkerStore: DeadLetterStore + ExecutionStore + WorkerStore
);

capability!(
    /// The pod monitor: executions and what the event store holds for each.
    PodMonitorStore: ExecutionStore + EventStore
);

capability!(
    /// Every capability at once: what the whole [`Store`](super::Store) adds to its ports.
    RoleCapabilities: BusLog
        + DeadLetterStore
        + CancelStore
        + CoordinatorStore
        + SagaOrchestratorStore
        + LocalWorkerStore
        + ResultProcessorStore
        + DlqProcessorStore
        + ReplayRunnerStore
        + NotificationServiceStore
        + NotificationDeliveryStore
        + RetentionSweeperStore
        + K8sWorkerStore
        + PodMonitorStore
);
