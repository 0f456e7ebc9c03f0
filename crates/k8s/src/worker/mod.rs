//! The k8s worker: turns `create_pod_command` into a ConfigMap and a hardened Pod, deletes the
//! pod at once on `delete_pod_command` (a cancel, or the saga's compensation), and deletes an
//! execution's pod and ConfigMap once its result is stored (`result_stored`, `result_failed`,
//! `execution_cancelled`). A periodic sweep deletes executor objects whose execution ended or
//! is unknown.
//!
//! Creation is idempotent: names derive from the execution id, an object that exists already
//! (409) is taken as created, and `pod_created` is emitted only when the event store has none
//! for the execution, so a redelivered command does nothing new. The execution moves
//! `scheduled → running` only after its pod exists; what ends the run is the pod monitor's to
//! report.
//!
//! The worker also holds a worker lease in the store ([`lease`]) reporting the languages of its
//! image registry, from which the API validates submissions.

mod create;
mod lease;

pub use lease::MODE;
mod sweep;

use std::sync::Arc;

use async_trait::async_trait;
use integr8s_core::event::{EventPayload, EventType, StoredEvent};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, K8sWorkerStore};
use integr8s_engine::consumer::{consume_with_dlq, Attempt, Handler};
use integr8s_engine::{EngineConfig, EngineError, WorkerConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams};
use tokio_util::sync::CancellationToken;

use crate::config::K8sConfig;
use crate::error::{is_not_found, K8sError};
use crate::images::ImageRegistry;
use crate::manifest::{config_map_name, pod_name};

/// The consumer group of the k8s worker (the original's name).
pub const GROUP: &str = "k8s-worker";

const TOPICS: &[EventType] = &[
    EventType::CreatePodCommand,
    EventType::DeletePodCommand,
    EventType::ResultStored,
    EventType::ResultFailed,
    EventType::ExecutionCancelled,
];

/// Creates and deletes executor pods for the saga's commands.
pub struct K8sWorker {
    bus: Arc<dyn EventBus>,
    inner: Arc<Inner>,
    /// Identity and timing of the worker lease.
    lease: WorkerConfig,
}

pub(crate) struct Inner {
    pub store: Arc<dyn K8sWorkerStore>,
    pub outbox: Outbox,
    pub config: K8sConfig,
    pub images: ImageRegistry,
    pub engine: EngineConfig,
    pub pods: Api<Pod>,
    pub config_maps: Api<ConfigMap>,
}

impl K8sWorker {
    /// A worker over `client`, in `config.namespace` (refused when it is `default`).
    pub fn new(
        client: kube::Client,
        config: K8sConfig,
        images: ImageRegistry,
        store: Arc<dyn K8sWorkerStore>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        engine: EngineConfig,
    ) -> Result<Self, K8sError> {
        config.validate()?;
        let pods = Api::namespaced(client.clone(), &config.namespace);
        let config_maps = Api::namespaced(client, &config.namespace);
        Ok(Self {
            bus,
            lease: WorkerConfig::default(),
            inner: Arc::new(Inner {
                store,
                outbox,
                config,
                images,
                engine,
                pods,
                config_maps,
            }),
        })
    }

    /// The id and timing of the worker lease (default: a generated id, the engine's timing).
    pub fn with_lease(mut self, lease: WorkerConfig) -> Self {
        self.lease = lease;
        self
    }

    /// The id of the worker lease.
    pub fn id(&self) -> &str {
        &self.lease.id
    }

    /// Takes the worker lease now, reporting the registry's languages and whether the
    /// Kubernetes API answers.
    pub async fn register(&self) -> Result<(), K8sError> {
        Ok(lease::renew(&self.inner, &self.lease.id, self.lease.lease).await?)
    }

    /// Consumes the commands and result events until `shutdown`, sweeping orphans and renewing
    /// the lease meanwhile; the lease is given up at the end.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), K8sError> {
        self.register().await?;
        let sweep_stop = shutdown.child_token();
        let sweeper = tokio::spawn(sweep::run(self.inner.clone(), sweep_stop.clone()));
        let leaser = tokio::spawn(lease::run(
            self.inner.clone(),
            self.lease.id.clone(),
            self.lease.heartbeat,
            self.lease.lease,
            sweep_stop.clone(),
        ));
        let result = consume_with_dlq(
            self.inner.store.as_ref(),
            self.bus.as_ref(),
            TOPICS,
            GROUP,
            self.inner.engine.max_handler_attempts,
            &Handling(self.inner.clone()),
            &shutdown,
        )
        .await;
        sweep_stop.cancel();
        let _ = sweeper.await;
        let _ = leaser.await;
        Ok(result?)
    }

    /// Deletes executor objects whose execution ended or is unknown, once; returns how many.
    pub async fn sweep_once(&self) -> Result<usize, K8sError> {
        sweep::sweep(&self.inner).await
    }
}

struct Handling(Arc<Inner>);

#[async_trait]
impl Handler for Handling {
    async fn handle(&self, event: &StoredEvent, attempt: Attempt) -> Result<(), EngineError> {
        let inner = &self.0;
        let env = &event.envelope;
        match &env.payload {
            EventPayload::CreatePodCommand { saga_id, run } => {
                inner.create(env, saga_id, run, attempt).await
            }
            EventPayload::DeletePodCommand { execution_id, .. } => {
                // A cancel: stop the run now. The pod monitor sees the pod go and reports the
                // cancel; the ConfigMap goes with the pod.
                inner.delete_objects(execution_id, Some(0), attempt).await
            }
            EventPayload::ResultStored { execution_id, .. }
            | EventPayload::ResultFailed { execution_id, .. }
            | EventPayload::ExecutionCancelled { execution_id, .. } => {
                inner.delete_objects(execution_id, None, attempt).await
            }
            _ => Ok(()),
        }
    }
}

impl Inner {
    /// Deletes the pod (with `grace` seconds to stop) and the ConfigMap of an execution; gone
    /// already is fine. An unavailable API is retried through redelivery, and given up on the
    /// last attempt (the sweep deletes what is left).
    async fn delete_objects(
        &self,
        execution_id: &str,
        grace: Option<u32>,
        attempt: Attempt,
    ) -> Result<(), EngineError> {
        if !crate::manifest::valid_execution_id(execution_id) {
            return Ok(());
        }
        let params = DeleteParams {
            grace_period_seconds: grace,
            ..DeleteParams::default()
        };
        let pod = self.pods.delete(&pod_name(execution_id), &params).await;
        let config_map = self
            .config_maps
            .delete(&config_map_name(execution_id), &DeleteParams::default())
            .await;
        for result in [pod.map(drop), config_map.map(drop)] {
            match result {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) if attempt.last => {
                    tracing::warn!(execution_id, error = %e, "could not delete executor objects; the sweep will");
                }
                Err(e) => {
                    return Err(EngineError::Dependency {
                        service: "kubernetes API",
                        detail: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Whether the event store holds an event of one of `types` for the execution.
    pub(crate) async fn has_event(
        &self,
        execution_id: &str,
        types: &[EventType],
    ) -> Result<bool, EngineError> {
        Ok(!self
            .store
            .events_for_aggregate(execution_id, types, 1)
            .await?
            .is_empty())
    }
}

/// The run-outcome event types.
pub(crate) const OUTCOMES: &[EventType] = &[
    EventType::ExecutionCompleted,
    EventType::ExecutionFailed,
    EventType::ExecutionTimeout,
    EventType::ExecutionCancelled,
];
