//! The whole pipeline in one process: SQLite store, in-process bus, the engine's coordinator,
//! saga orchestrator and result processor, and either the k8s worker and pod monitor against
//! the fake API server (whose kubelet runs pods in the local sandbox), or the local worker over
//! the same sandbox (the baseline).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
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
    Coordinator, EngineConfig, LocalWorker, ResultProcessor, SagaOrchestrator, WorkerConfig,
};
use integr8s_k8s::fake::FakeCluster;
use integr8s_k8s::{Connection, ImageRegistry, K8sConfig, K8sWorker, PodMonitor};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous bound on any wait, so that a broken pipeline fails instead of hanging; never a
/// performance threshold.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const NAMESPACE: &str = "integr8s-executor";

/// Sandbox uids of this test binary: 400000.. (16 per executor), apart from every other test
/// binary's range and from the default range of a server on this host.
pub async fn sandbox() -> Arc<dyn Executor> {
    init_logs();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let executor = LocalExecutor::start(SandboxConfig {
        uid_base: 400_000 + n * 16,
        max_concurrent: 2,
        ..SandboxConfig::default()
    })
    .await;
    let health = executor.health();
    assert!(health.ready, "sandbox not ready: {health:?}");
    Arc::new(executor)
}

/// Logs to the test output when `RUST_LOG` is set.
fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        queue: QueuePolicy {
            max_active: 4,
            max_active_per_user: 4,
            ageing_seconds: 3600,
        },
        tick: Duration::from_millis(200),
        max_handler_attempts: 3,
        claim_timeout: Duration::from_secs(30),
    }
}

type Task = JoinHandle<()>;

fn spawn<E: std::fmt::Debug + Send + 'static>(
    name: &'static str,
    run: impl Future<Output = Result<(), E>> + Send + 'static,
) -> Task {
    tokio::spawn(async move {
        if let Err(e) = run.await {
            panic!("{name} failed: {e:?}");
        }
    })
}

/// A component that can be stopped cleanly or killed.
struct Component {
    token: CancellationToken,
    task: Task,
}

pub struct Stack {
    pub store: Arc<dyn Store>,
    pub outbox: Outbox,
    bus: Arc<dyn EventBus>,
    pub cluster: Option<FakeCluster>,
    pub k8s: K8sConfig,
    executor: Arc<dyn Executor>,
    engine: Vec<Task>,
    shutdown: CancellationToken,
    worker: Option<Component>,
    monitor: Option<Component>,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// The pipeline with the k8s worker and the pod monitor against a fresh fake cluster.
    pub async fn k8s() -> Self {
        let executor = sandbox().await;
        Self::k8s_over(executor).await
    }

    pub async fn k8s_over(executor: Arc<dyn Executor>) -> Self {
        let cluster = FakeCluster::start(executor.clone(), "node-1")
            .await
            .unwrap();
        let k8s = K8sConfig {
            namespace: NAMESPACE.to_owned(),
            connection: Connection::Url(cluster.url().to_owned()),
            sweep_interval: Duration::from_millis(500),
            reconcile_interval: Duration::from_millis(200),
            missing_pod_grace: Duration::from_millis(200),
            ..K8sConfig::default()
        };
        let mut stack = Self::engine_only(executor, Some(cluster), k8s).await;
        stack.start_worker().await;
        stack.start_monitor().await;
        stack
    }

    /// The baseline: the local worker over `executor`.
    pub async fn local(executor: Arc<dyn Executor>) -> Self {
        let mut stack = Self::engine_only(executor.clone(), None, K8sConfig::default()).await;
        let mut registry = RuntimeRegistry::embedded();
        registry.probe_host();
        let worker = LocalWorker::new(
            stack.store.clone(),
            stack.bus.clone(),
            stack.outbox.clone(),
            executor,
            Arc::new(registry),
            engine_config(),
            WorkerConfig::default(),
        );
        let token = stack.shutdown.child_token();
        let task = spawn("local worker", worker.run(token.clone()));
        stack.worker = Some(Component { token, task });
        stack
    }

    async fn engine_only(
        executor: Arc<dyn Executor>,
        cluster: Option<FakeCluster>,
        k8s: K8sConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k8s.db").display());
        let sqlite = integr8s_store::SqliteStore::open(&url).await.unwrap();
        sqlite.migrate().await.unwrap();
        let sqlite = Arc::new(sqlite);
        let store: Arc<dyn Store> = sqlite.clone();
        let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
        let bus: Arc<dyn EventBus> = Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
        let outbox = Outbox::new(events, bus.clone(), "k8s-test");
        let shutdown = CancellationToken::new();
        let config = engine_config();
        let engine = vec![
            spawn(
                "coordinator",
                Coordinator::new(
                    store.clone(),
                    bus.clone(),
                    outbox.clone(),
                    config,
                    EffectiveSettings::new(store.clone(), config.settings_defaults()),
                )
                .run(shutdown.clone()),
            ),
            spawn(
                "saga orchestrator",
                SagaOrchestrator::new(store.clone(), bus.clone(), outbox.clone(), config)
                    .run(shutdown.clone()),
            ),
            spawn(
                "result processor",
                ResultProcessor::new(store.clone(), bus.clone(), outbox.clone(), config)
                    .run(shutdown.clone()),
            ),
        ];
        Self {
            store,
            outbox,
            bus,
            cluster,
            k8s,
            executor,
            engine,
            shutdown,
            worker: None,
            monitor: None,
            _dir: dir,
        }
    }

    pub fn cluster(&self) -> &FakeCluster {
        self.cluster.as_ref().expect("a k8s stack")
    }

    pub async fn start_worker(&mut self) {
        let client = self.k8s.client().await.unwrap();
        let worker = K8sWorker::new(
            client,
            self.k8s.clone(),
            ImageRegistry::embedded(),
            self.store.clone(),
            self.bus.clone(),
            self.outbox.clone(),
            engine_config(),
        )
        .unwrap();
        let token = self.shutdown.child_token();
        let task = spawn("k8s worker", worker.run(token.clone()));
        self.worker = Some(Component { token, task });
    }

    pub async fn start_monitor(&mut self) {
        let client = self.k8s.client().await.unwrap();
        let monitor = PodMonitor::new(
            client,
            self.k8s.clone(),
            self.store.clone(),
            self.outbox.clone(),
        )
        .unwrap();
        let token = self.shutdown.child_token();
        let task = spawn("pod monitor", monitor.run(token.clone()));
        self.monitor = Some(Component { token, task });
    }

    /// Kills the worker where it is (its task is dropped mid-await, as a crash would leave it).
    pub async fn kill_worker(&mut self) {
        if let Some(c) = self.worker.take() {
            c.task.abort();
            let _ = c.task.await;
        }
    }

    pub async fn kill_monitor(&mut self) {
        if let Some(c) = self.monitor.take() {
            c.task.abort();
            let _ = c.task.await;
        }
    }

    /// Stops everything cleanly (each component must stop without error).
    pub async fn stop(mut self) {
        for c in [self.worker.take(), self.monitor.take()]
            .into_iter()
            .flatten()
        {
            c.token.cancel();
            tokio::time::timeout(DEADLINE, c.task)
                .await
                .expect("component did not stop")
                .unwrap();
        }
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.engine) {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("engine component did not stop")
                .unwrap();
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.stop().await;
        }
        drop(self.executor);
    }

    pub async fn submit(&self, script: &str) -> String {
        self.submit_with(script, None, 5).await
    }

    pub async fn submit_with(&self, script: &str, stdin: Option<&str>, timeout: u64) -> String {
        let (execution, env) = request(script, stdin, timeout);
        let id = execution.execution_id.clone();
        match self.store.create_execution(&execution, &env).await.unwrap() {
            CreateExecution::Created(_, stored) => self.outbox.publish_stored(&stored).await,
            CreateExecution::Existing(_) => panic!("no idempotency key was given"),
        }
        id
    }

    pub async fn cancel(&self, execution_id: &str) -> CancelOutcome {
        request_cancel(
            self.store.as_ref(),
            &self.outbox,
            execution_id,
            "alice",
            "user requested cancellation",
        )
        .await
        .unwrap()
    }

    pub async fn execution(&self, execution_id: &str) -> Execution {
        self.store.execution(execution_id).await.unwrap().unwrap()
    }

    /// Waits until the execution ended and its end was announced.
    pub async fn finished(&self, execution_id: &str) -> Execution {
        eventually("the execution to end", || async {
            let e = self.execution(execution_id).await;
            let last = if e.status == ExecutionStatus::Cancelled {
                EventType::ExecutionCancelled
            } else {
                EventType::ResultStored
            };
            let announced = self.count(execution_id, last).await > 0;
            (e.status.is_terminal() && announced).then_some(e)
        })
        .await
    }

    pub async fn wait_event(&self, execution_id: &str, event_type: EventType) {
        eventually(event_type.as_str(), || async {
            (self.count(execution_id, event_type).await > 0).then_some(())
        })
        .await;
    }

    pub async fn count(&self, execution_id: &str, event_type: EventType) -> usize {
        self.store
            .events_for_aggregate(execution_id, &[event_type], 1000)
            .await
            .unwrap()
            .len()
    }

    /// The event types stored for the execution, in order.
    pub async fn event_types(&self, execution_id: &str) -> Vec<EventType> {
        self.store
            .events_for_aggregate(execution_id, &[], 1000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.envelope.event_type())
            .collect()
    }

    pub async fn events(&self, execution_id: &str) -> Vec<Envelope> {
        self.store
            .events_for_aggregate(execution_id, &[], 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.envelope)
            .collect()
    }

    /// Waits until the cluster holds no executor pod and no ConfigMap.
    pub async fn cluster_is_clean(&self) {
        let cluster = self.cluster();
        eventually("no pod or ConfigMap left behind", || async {
            (cluster.pods().is_empty() && cluster.config_maps().is_empty()).then_some(())
        })
        .await;
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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A new python 3.11 execution of `alice` and its request event.
pub fn request(script: &str, stdin: Option<&str>, timeout: u64) -> (Execution, Envelope) {
    let id = integr8s_core::new_id();
    let limits = RunLimits {
        timeout_seconds: timeout,
        ..RunLimits::default()
    };
    let now = integr8s_core::now();
    let execution = Execution {
        execution_id: id.clone(),
        user_id: "alice".to_owned(),
        script: script.to_owned(),
        lang: "python".to_owned(),
        lang_version: "3.11".to_owned(),
        status: ExecutionStatus::Queued,
        priority: Priority::Normal,
        limits,
        stdout: None,
        stderr: None,
        exit_code: None,
        error_type: None,
        error_message: None,
        resource_usage: None,
        idempotency_key: None,
        stdin: stdin.map(str::to_owned),
        created_at: now,
        updated_at: now,
    };
    let run = RunRequest {
        execution_id: id,
        script: script.to_owned(),
        language: "python".to_owned(),
        language_version: "3.11".to_owned(),
        runtime_image: "python:3.11-slim".to_owned(),
        runtime_command: vec!["python3.11".into(), "-I".into(), "/work/main.py".into()],
        runtime_filename: "main.py".to_owned(),
        timeout_seconds: timeout,
        cpu_limit: "1000m".to_owned(),
        memory_limit: "256Mi".to_owned(),
        cpu_request: "200m".to_owned(),
        memory_request: "128Mi".to_owned(),
        priority: Priority::Normal,
        limits,
        stdin: stdin.map(str::to_owned),
    };
    let env = Envelope::new(
        EventPayload::ExecutionRequested(run),
        EventMetadata::new("api", Some("alice".to_owned())),
    );
    (execution, env)
}
