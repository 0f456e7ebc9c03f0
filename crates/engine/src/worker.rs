//! The local worker: turns `create_pod_command` into a sandboxed run on this host and reports
//! how it ended. Each run is a task of its own; the coordinator's queue policy bounds how many
//! are live, and the executor has its own slot limit.
//!
//! A run happens at most once: it starts only after the `scheduled → running` compare-and-set
//! succeeded, so a redelivered command is skipped. Once that CAS succeeded the run's task
//! always reports an outcome (it retries the emission), and an execution still `running` when
//! a worker starts was interrupted and is ended as a system error, never re-run.

mod outcome;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunRequest, StoredEvent};
use integr8s_core::execution::ExecutionStatus;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Executor, RunControl, RunOutcome, RunSpec, Store};
use integr8s_core::runtime::RuntimeRegistry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::EngineConfig;
use crate::consumer::{consume_with_dlq, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;
use outcome::{map_report, system_failure};

const TOPICS: &[EventType] = &[EventType::CreatePodCommand, EventType::ExecutionCancelled];

/// How many ids of executions cancelled before their run started are remembered.
const CANCELLED_BEFORE_START_CAPACITY: usize = 10_000;

/// Attempts at storing a run's outcome event before giving up (the restart recovery then ends
/// the execution).
const OUTCOME_EMIT_ATTEMPTS: u32 = 6;

pub(crate) const RESTART_MESSAGE: &str = "run interrupted by a service restart";
pub(crate) const SHUTDOWN_MESSAGE: &str = "run interrupted by service shutdown";

/// Runs scripts for `create_pod_command` through an [`Executor`] and stops them on
/// `execution_cancelled`.
pub struct LocalWorker {
    bus: Arc<dyn EventBus>,
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    outbox: Outbox,
    executor: Arc<dyn Executor>,
    registry: Arc<RuntimeRegistry>,
    config: EngineConfig,
    live: Mutex<HashMap<String, LiveRun>>,
    cancelled_before_start: Mutex<RecentIds>,
    tasks: TaskTracker,
}

/// A run in progress.
#[derive(Clone, Default)]
struct LiveRun {
    cancel: CancellationToken,
    /// Who asked for the cancel; unset when the worker stopped the run on shutdown.
    cancelled_by: Arc<OnceLock<String>>,
}

/// A bounded set that forgets its oldest ids.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl RecentIds {
    fn insert(&mut self, id: &str) {
        if !self.ids.insert(id.to_owned()) {
            return;
        }
        self.order.push_back(id.to_owned());
        while self.order.len() > CANCELLED_BEFORE_START_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

impl LocalWorker {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        executor: Arc<dyn Executor>,
        registry: Arc<RuntimeRegistry>,
        config: EngineConfig,
    ) -> Self {
        Self {
            bus,
            inner: Arc::new(Inner {
                store,
                outbox,
                executor,
                registry,
                config,
                live: Mutex::default(),
                cancelled_before_start: Mutex::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Ends runs interrupted by a previous stop, then runs commands until `shutdown`. On
    /// shutdown the live runs are stopped, reported as interrupted and waited for.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        self.inner.recover().await?;
        let result = consume_with_dlq(
            self.inner.store.as_ref(),
            self.bus.as_ref(),
            TOPICS,
            groups::LOCAL_WORKER,
            self.inner.config.max_handler_attempts,
            &self.inner,
            &shutdown,
        )
        .await;
        let live: Vec<LiveRun> = lock(&self.inner.live).values().cloned().collect();
        if !live.is_empty() {
            tracing::info!(runs = live.len(), "stopping live runs");
        }
        for run in live {
            run.cancel.cancel();
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        result
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Handler for Arc<Inner> {
    async fn handle(&self, event: &StoredEvent, _attempt: Attempt) -> Result<(), EngineError> {
        let env = &event.envelope;
        match &env.payload {
            EventPayload::CreatePodCommand { run, .. } => self.start(env, run).await,
            EventPayload::ExecutionCancelled {
                execution_id,
                cancelled_by,
                force_terminated: false,
                ..
            } => {
                self.cancel(execution_id, cancelled_by);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl Inner {
    async fn recover(&self) -> Result<(), EngineError> {
        for execution in self
            .store
            .executions_in(&[ExecutionStatus::Running])
            .await?
        {
            tracing::warn!(execution_id = %execution.execution_id, "ending a run interrupted by a restart");
            let payload = system_failure(&execution.execution_id, RESTART_MESSAGE.to_owned());
            self.outbox
                .emit(payload, Some(execution.user_id.clone()), None)
                .await?;
        }
        Ok(())
    }

    fn cancel(&self, execution_id: &str, cancelled_by: &str) {
        if let Some(run) = lock(&self.live).get(execution_id) {
            tracing::info!(execution_id, "cancelling the live run");
            // Only the first cancel names who asked.
            let _ = run.cancelled_by.set(cancelled_by.to_owned());
            run.cancel.cancel();
            return;
        }
        lock(&self.cancelled_before_start).insert(execution_id);
    }

    async fn start(
        self: &Arc<Self>,
        cause: &Envelope,
        run: &RunRequest,
    ) -> Result<(), EngineError> {
        let id = run.execution_id.as_str();
        if lock(&self.cancelled_before_start).contains(id) {
            tracing::info!(execution_id = id, "cancelled before its start; not run");
            return Ok(());
        }
        let moved = self
            .store
            .transition_execution(id, &[ExecutionStatus::Scheduled], ExecutionStatus::Running)
            .await?;
        if !moved {
            tracing::info!(
                execution_id = id,
                "not scheduled (already run, cancelled or deleted); skipped"
            );
            return Ok(());
        }
        let live = LiveRun::default();
        lock(&self.live).insert(id.to_owned(), live.clone());
        let span = tracing::info_span!("run", execution_id = id);
        let task = self.clone().run_to_end(cause.clone(), run.clone(), live);
        self.tasks.spawn(task.instrument(span));
        Ok(())
    }

    /// Runs one script and reports its outcome; never returns without having tried to.
    async fn run_to_end(self: Arc<Self>, cause: Envelope, run: RunRequest, live: LiveRun) {
        let id = run.execution_id.clone();
        let pod_name = format!("local-{id}");
        let started = EventPayload::ExecutionStarted {
            execution_id: id.clone(),
            pod_name: pod_name.clone(),
            node_name: None,
            container_id: None,
        };
        let running = EventPayload::ExecutionRunning {
            execution_id: id.clone(),
            pod_name,
            progress_percentage: None,
        };
        for payload in [started, running] {
            if let Err(e) = self.emit(&cause, payload).await {
                tracing::warn!(error = %e, "progress event not stored");
            }
        }
        let outcome = match self.registry.resolve(&run.language, &run.language_version) {
            Err(e) => system_failure(&id, e.to_string()),
            Ok(runtime) => {
                let spec = RunSpec {
                    execution_id: id.clone(),
                    lang: runtime.lang,
                    lang_version: runtime.version,
                    file_name: runtime.file_name,
                    script: run.script.clone(),
                    command: runtime.command,
                    env: runtime.env,
                    limits: run.limits,
                    stdin: run.stdin.clone(),
                };
                let control = RunControl {
                    cancel: live.cancel.clone(),
                };
                match self.executor.run(&spec, control).await {
                    Ok(report) => match (report.outcome, live.cancelled_by.get()) {
                        (RunOutcome::Cancelled, None) => {
                            system_failure(&id, SHUTDOWN_MESSAGE.to_owned())
                        }
                        (_, by) => map_report(&id, &report, &run.limits, by.map(String::as_str)),
                    },
                    Err(e) => system_failure(&id, e.to_string()),
                }
            }
        };
        lock(&self.live).remove(&id);
        tracing::info!(outcome = %outcome.event_type(), "run ended");
        self.emit_outcome(&cause, outcome).await;
    }

    async fn emit(
        &self,
        cause: &Envelope,
        payload: EventPayload,
    ) -> Result<StoredEvent, integr8s_core::StoreError> {
        crate::consumer::emit_caused_by(&self.outbox, cause, payload).await
    }

    /// Stores the outcome, retrying with back-off: the command was acked, so this is the
    /// only chance to end the execution before a restart.
    async fn emit_outcome(&self, cause: &Envelope, payload: EventPayload) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=OUTCOME_EMIT_ATTEMPTS {
            match self.emit(cause, payload.clone()).await {
                Ok(_) => return,
                Err(e) if attempt < OUTCOME_EMIT_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "storing the run outcome failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the run outcome could not be stored; a restart will end the execution");
                }
            }
        }
    }
}
