//! Starts the whole pipeline over a SQLite file and submits executions like the API does.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use integr8s_core::cancel::{request_cancel, CancelOutcome};
use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::event::{Envelope, EventMetadata, EventPayload, EventType, RunRequest};
use integr8s_core::execution::{Execution, ExecutionStatus, Priority, RunLimits};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{CreateExecution, EventBus, Executor, QueuePolicy, Store};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_engine::{
    Coordinator, EngineConfig, EngineError, LocalWorker, ResultProcessor, SagaOrchestrator,
    WorkerConfig,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous bound on any wait; only there so that a broken pipeline fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn config(max_active: u32, max_active_per_user: u32) -> EngineConfig {
    EngineConfig {
        queue: QueuePolicy {
            max_active,
            max_active_per_user,
            ageing_seconds: 3600,
        },
        tick: Duration::from_millis(200),
        max_handler_attempts: 5,
        claim_timeout: Duration::from_secs(30),
    }
}

/// A worker with a short heartbeat and a lease long enough for a busy test machine.
pub fn worker(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: id.to_owned(),
        heartbeat: Duration::from_millis(200),
        lease: Duration::from_secs(3),
        cancel_poll: Duration::from_millis(200),
    }
}

pub async fn open_store(db: &Path) -> Arc<integr8s_store::SqliteStore> {
    let url = format!("sqlite://{}", db.display());
    let store = integr8s_store::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

/// A store over `db`, a fresh bus over it and an outbox.
pub async fn parts(db: &Path) -> (Arc<dyn Store>, Arc<dyn EventBus>, Outbox) {
    let sqlite = open_store(db).await;
    let store: Arc<dyn Store> = sqlite.clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
    let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = Outbox::new(events, bus.clone(), "engine-test");
    (store, bus, outbox)
}

/// The components over one store and one bus: by default one of each; more coordinators and
/// workers can be added, as other processes sharing the store and bus would be.
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub outbox: Outbox,
    config: EngineConfig,
    registry: Arc<RuntimeRegistry>,
    shutdown: CancellationToken,
    tasks: Vec<(String, JoinHandle<Result<(), EngineError>>)>,
}

impl Pipeline {
    pub async fn start(db: &Path, executor: Arc<dyn Executor>, config: EngineConfig) -> Self {
        let mut registry = RuntimeRegistry::embedded();
        registry.probe_host();
        Self::start_with(db, executor, config, registry).await
    }

    pub async fn start_with(
        db: &Path,
        executor: Arc<dyn Executor>,
        config: EngineConfig,
        registry: RuntimeRegistry,
    ) -> Self {
        let mut p = Self::without_workers(db, config, registry).await;
        p.add_worker(worker("worker-1"), executor);
        p
    }

    /// A coordinator, a saga orchestrator and a result processor over a SQLite file; no worker.
    pub async fn without_workers(
        db: &Path,
        config: EngineConfig,
        registry: RuntimeRegistry,
    ) -> Self {
        let (store, bus, outbox) = parts(db).await;
        Self::over(store, bus, outbox, config, registry)
    }

    /// A coordinator, a saga orchestrator and a result processor over the given store and bus.
    pub fn over(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: EngineConfig,
        registry: RuntimeRegistry,
    ) -> Self {
        let mut p = Self {
            store,
            bus,
            outbox,
            config,
            registry: Arc::new(registry),
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        };
        p.add_coordinator();
        let s = p.shutdown.clone();
        let saga = SagaOrchestrator::new(p.store.clone(), p.bus.clone(), p.outbox.clone(), config);
        p.tasks
            .push(("saga".into(), tokio::spawn(saga.run(s.clone()))));
        let results =
            ResultProcessor::new(p.store.clone(), p.bus.clone(), p.outbox.clone(), config);
        p.tasks
            .push(("results".into(), tokio::spawn(results.run(s))));
        p
    }

    /// One more coordinator, as another process would run.
    pub fn add_coordinator(&mut self) {
        self.add_coordinator_over(self.store.clone());
    }

    /// One more coordinator over `store` (e.g. a pool of its own on the same database).
    pub fn add_coordinator_over(&mut self, store: Arc<dyn Store>) {
        let settings = EffectiveSettings::new(store.clone(), self.config.settings_defaults());
        let c = Coordinator::new(
            store,
            self.bus.clone(),
            self.outbox.clone(),
            self.config,
            settings,
        );
        let name = format!("coordinator-{}", self.tasks.len());
        self.tasks
            .push((name, tokio::spawn(c.run(self.shutdown.clone()))));
    }

    /// A local worker, as another process would run.
    pub fn add_worker(&mut self, worker: WorkerConfig, executor: Arc<dyn Executor>) {
        let name = format!("worker {}", worker.id);
        let w = self.worker(worker, executor);
        self.tasks
            .push((name, tokio::spawn(w.run(self.shutdown.clone()))));
    }

    /// A local worker over this pipeline's store and bus, not started.
    pub fn worker(&self, worker: WorkerConfig, executor: Arc<dyn Executor>) -> LocalWorker {
        LocalWorker::new(
            self.store.clone(),
            self.bus.clone(),
            self.outbox.clone(),
            executor,
            self.registry.clone(),
            self.config,
            worker,
        )
    }

    /// Stops every component and checks that each stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for (name, task) in self.tasks {
            let result = tokio::time::timeout(DEADLINE, task)
                .await
                .unwrap_or_else(|_| panic!("{name} did not stop"))
                .unwrap();
            assert!(result.is_ok(), "{name} failed: {result:?}");
        }
    }

    pub async fn submit(&self, user: &str, script: &str, priority: Priority) -> String {
        submit(self.store.as_ref(), &self.outbox, user, script, priority).await
    }

    /// Asks for a cancel the way the API does.
    pub async fn cancel(&self, execution_id: &str, user: &str) -> CancelOutcome {
        request_cancel(
            self.store.as_ref(),
            &self.outbox,
            execution_id,
            user,
            "user requested cancellation",
        )
        .await
        .unwrap()
    }

    pub async fn execution(&self, execution_id: &str) -> Execution {
        self.store.execution(execution_id).await.unwrap().unwrap()
    }

    /// Waits until the execution ended and its end was announced: by `result_stored`, or for a
    /// cancel (which gets none) by its `execution_cancelled`.
    pub async fn finished(&self, execution_id: &str) -> Execution {
        eventually("the execution to end", || async {
            let e = self.execution(execution_id).await;
            let last = if e.status == ExecutionStatus::Cancelled {
                EventType::ExecutionCancelled
            } else {
                EventType::ResultStored
            };
            let announced = self.count_events(execution_id, last).await > 0;
            (e.status.is_terminal() && announced).then_some(e)
        })
        .await
    }

    pub async fn wait_status(&self, execution_id: &str, status: ExecutionStatus) -> Execution {
        eventually(status.as_str(), || async {
            let e = self.execution(execution_id).await;
            (e.status == status).then_some(e)
        })
        .await
    }

    pub async fn count_events(&self, execution_id: &str, event_type: EventType) -> usize {
        self.store
            .events_for_aggregate(execution_id, &[event_type], 1000)
            .await
            .unwrap()
            .len()
    }
}

/// Polls `probe` until it yields a value; panics after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stores a `queued` execution with its `execution_requested` and publishes the event.
pub async fn submit(
    store: &dyn Store,
    outbox: &Outbox,
    user: &str,
    script: &str,
    priority: Priority,
) -> String {
    let (execution, env) = request(user, script, priority);
    let id = execution.execution_id.clone();
    match store.create_execution(&execution, &env).await.unwrap() {
        CreateExecution::Created(_, stored) => outbox.publish_stored(&stored).await,
        CreateExecution::Existing(_) => panic!("no idempotency key was given"),
    }
    id
}

/// A new python 3.11 execution and its request event.
pub fn request(user: &str, script: &str, priority: Priority) -> (Execution, Envelope) {
    let id = integr8s_core::new_id();
    let limits = RunLimits {
        timeout_seconds: 5,
        ..RunLimits::default()
    };
    let now = integr8s_core::now();
    let execution = Execution {
        execution_id: id.clone(),
        user_id: user.to_owned(),
        script: script.to_owned(),
        lang: "python".to_owned(),
        lang_version: "3.11".to_owned(),
        status: ExecutionStatus::Queued,
        priority,
        limits,
        stdout: None,
        stderr: None,
        exit_code: None,
        error_type: None,
        error_message: None,
        resource_usage: None,
        idempotency_key: None,
        stdin: None,
        created_at: now,
        updated_at: now,
    };
    let run = RunRequest {
        execution_id: id,
        script: script.to_owned(),
        language: "python".to_owned(),
        language_version: "3.11".to_owned(),
        runtime_image: "python:3.11-slim".to_owned(),
        runtime_command: vec![
            "python3.11".to_owned(),
            "-I".to_owned(),
            "/work/main.py".to_owned(),
        ],
        runtime_filename: "main.py".to_owned(),
        timeout_seconds: limits.timeout_seconds,
        cpu_limit: "1000m".to_owned(),
        memory_limit: "256Mi".to_owned(),
        cpu_request: "200m".to_owned(),
        memory_request: "128Mi".to_owned(),
        priority,
        limits,
        stdin: None,
    };
    let env = Envelope::new(
        EventPayload::ExecutionRequested(run),
        EventMetadata::new("api", Some(user.to_owned())),
    );
    (execution, env)
}

/// The registry with every runtime marked installed (for the scripted executor).
pub fn all_runtimes() -> RuntimeRegistry {
    let mut registry = RuntimeRegistry::embedded();
    registry.assume_all_available();
    registry
}
