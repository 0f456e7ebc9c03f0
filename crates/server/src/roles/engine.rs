//! The engine roles: each one is a component of `integr8s-engine` over the process's adapters,
//! run as a task until the shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{Executor, QueuePolicy, Store};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::RunLimits;
use integr8s_engine::notifications::{
    DeliveryWorker, NotificationConfig, NotificationService, ThrottleConfig,
};
use integr8s_engine::{Coordinator, EngineConfig, LocalWorker, ResultProcessor, SagaOrchestrator};
use integr8s_k8s::{K8sConfig, K8sWorker, PodMonitor};
use integr8s_sandbox::LocalExecutor;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::adapters::Adapters;
use super::Role;
use crate::config::Config;

/// The tasks of a process's roles; each ends with the name of its role and its error.
pub type RoleTasks = JoinSet<Result<(), String>>;

pub fn run_limits(config: &Config) -> RunLimits {
    RunLimits {
        timeout_seconds: config.execution.timeout_seconds,
        memory_bytes: config.memory_limit_bytes(),
        max_processes: config.execution.max_processes,
        max_output_bytes: config.execution.max_output_bytes,
        cpu_time_ms: None,
    }
}

fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        queue: QueuePolicy {
            max_active: config.execution.max_concurrent,
            max_active_per_user: config.execution.max_per_user,
            ageing_seconds: config.execution.ageing_seconds,
        },
        tick: Duration::from_secs(1),
        max_handler_attempts: 5,
        ..EngineConfig::default()
    }
}

fn notification_config(config: &Config) -> NotificationConfig {
    let n = &config.notifications;
    NotificationConfig {
        throttle: (n.throttle_max_per_window > 0).then(|| ThrottleConfig {
            max_per_window: n.throttle_max_per_window,
            window: Duration::from_secs(n.throttle_window_seconds),
        }),
        max_attempts: n.max_delivery_attempts,
        // The testing switch that accepts http:// on loopback also lets deliveries go there.
        allow_private_targets: n.allow_insecure_webhooks,
        ..NotificationConfig::default()
    }
}

/// Starts the local sandbox executor; refuses a uid range another process holds.
pub async fn start_sandbox(config: &Config) -> anyhow::Result<Arc<LocalExecutor>> {
    let sandbox_config = integr8s_sandbox::SandboxConfig {
        bwrap: config.sandbox.bwrap.clone(),
        uid_base: config.sandbox.uid_base,
        max_concurrent: config.execution.max_concurrent as usize,
        warm_limits: run_limits(config),
        prestart: config.sandbox.prestart,
        ..Default::default()
    };
    let executor = Arc::new(LocalExecutor::start(sandbox_config).await);
    if let Some(reason) = executor.uid_claim_error() {
        anyhow::bail!("{reason}");
    }
    let health = executor.health();
    if health.ready {
        tracing::info!(mode = %health.mode, detail = ?health.detail, "sandbox ready");
    } else {
        tracing::error!(mode = %health.mode, detail = ?health.detail, "sandbox unavailable: executions will fail until this is fixed");
    }
    Ok(executor)
}

/// The cluster of the Kubernetes executor's roles: the checked `[k8s]` settings and a client.
#[derive(Clone)]
pub struct Kubernetes {
    pub config: K8sConfig,
    pub client: integr8s_k8s::Client,
}

impl Kubernetes {
    /// Checks `[k8s]` and builds the client it names (no call is made yet).
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let k8s = config.k8s.to_config()?;
        let client = k8s
            .client()
            .await
            .context("connecting to the Kubernetes API (k8s.connection)")?;
        Ok(Self {
            config: k8s,
            client,
        })
    }
}

/// What the engine roles of a process are built from.
pub struct EngineParts<'a> {
    pub config: &'a Config,
    pub adapters: &'a Adapters,
    pub registry: Arc<RuntimeRegistry>,
    /// The sandbox, when the process runs the local worker.
    pub executor: Option<Arc<LocalExecutor>>,
    /// The cluster, when the process runs a role of the Kubernetes executor.
    pub kubernetes: Option<Kubernetes>,
}

impl EngineParts<'_> {
    fn outbox(&self, source: &'static str) -> Outbox {
        Outbox::new(
            self.adapters.event_store.clone(),
            self.adapters.bus.clone(),
            source,
        )
    }

    /// Spawns the tasks of an engine role (the API is not one: see `super::api`).
    pub async fn spawn(
        &self,
        role: Role,
        tasks: &mut RoleTasks,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let store: Arc<dyn Store> = self.adapters.store.clone();
        let bus = self.adapters.bus.clone();
        let engine = engine_config(self.config);
        let stop = shutdown.clone();
        match role {
            Role::Api => {}
            Role::Coordinator => {
                let c = Coordinator::new(
                    store,
                    bus,
                    self.outbox(role.name()),
                    engine,
                    self.adapters.settings.clone(),
                );
                tasks.spawn(named(role.name(), c.run(stop)));
            }
            Role::SagaOrchestrator => {
                let s = SagaOrchestrator::new(store, bus, self.outbox(role.name()), engine);
                tasks.spawn(named(role.name(), s.run(stop)));
            }
            Role::LocalWorker => {
                let executor: Arc<dyn Executor> = self
                    .executor
                    .clone()
                    .context("the local worker needs the sandbox")?;
                let w = LocalWorker::new(
                    store,
                    bus,
                    self.outbox(role.name()),
                    executor,
                    self.registry.clone(),
                    engine,
                    self.config.worker.engine(),
                );
                // The API answers from the workers' leases: this one is known before it serves.
                w.register()
                    .await
                    .context("registering the local worker (database.url)")?;
                tasks.spawn(named(role.name(), w.run(stop)));
            }
            Role::K8sWorker => {
                let k8s = self
                    .kubernetes
                    .clone()
                    .context("the k8s worker needs the [k8s] settings")?;
                let images = k8s.config.image_registry()?;
                let w = K8sWorker::new(
                    k8s.client,
                    k8s.config,
                    images,
                    store,
                    bus,
                    self.outbox(role.name()),
                    engine,
                )?
                .with_lease(self.config.worker.engine());
                // Its lease tells the API which languages the cluster runs.
                w.register()
                    .await
                    .context("registering the k8s worker (database.url)")?;
                tasks.spawn(named(role.name(), w.run(stop)));
            }
            Role::PodMonitor => {
                let k8s = self
                    .kubernetes
                    .clone()
                    .context("the pod monitor needs the [k8s] settings")?;
                let m = PodMonitor::new(k8s.client, k8s.config, store, self.outbox(role.name()))?;
                tasks.spawn(named(role.name(), m.run(stop)));
            }
            Role::ResultProcessor => {
                let r = ResultProcessor::new(store, bus, self.outbox(role.name()), engine);
                tasks.spawn(named(role.name(), r.run(stop)));
            }
            Role::DlqProcessor => {
                // `retention.dlq = "0"` keeps dead letters for ever.
                let dlq = integr8s_engine::dlq::DlqConfig {
                    retention: self.config.retention.dlq_age(),
                    ..integr8s_engine::dlq::DlqConfig::default()
                };
                let p = integr8s_engine::dlq::DlqProcessor::new(
                    store.clone(),
                    self.outbox(role.name()),
                    dlq,
                );
                tasks.spawn(named(role.name(), p.run(stop.clone())));
                // The retention sweep goes with the housekeeping role; sweeps of several
                // processes take turns through the store.
                let sweeper = integr8s_engine::retention::RetentionSweeper::new(
                    store,
                    self.config.retention.sweeper(),
                );
                tasks.spawn(named("retention-sweeper", sweeper.run(stop)));
            }
            Role::EventReplay => {
                // `file` replay targets write under <data_dir>/replays only.
                let replays = integr8s_engine::replay::ReplayRunnerConfig::new(
                    self.config.server.data_dir.join("replays"),
                );
                let rr = integr8s_engine::replay::ReplayRunner::new(
                    store,
                    self.outbox(role.name()),
                    replays,
                );
                tasks.spawn(named(role.name(), rr.run(stop)));
            }
            Role::Notifications => {
                let notifications = notification_config(self.config);
                let n = NotificationService::new(
                    store.clone(),
                    bus.clone(),
                    self.outbox("notification-service"),
                    engine,
                    notifications.clone(),
                );
                tasks.spawn(named("notification-service", n.run(stop.clone())));
                let d = DeliveryWorker::new(store, bus, notifications)?;
                tasks.spawn(named("notification-delivery", d.run(stop)));
            }
        }
        Ok(())
    }
}

pub async fn named<F, E>(name: &'static str, fut: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    fut.await.map_err(|e| format!("{name}: {e}"))
}
