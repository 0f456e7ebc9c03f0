//! The local worker: turns `create_pod_command` into a sandboxed run on this host and reports
//! how it ended; `delete_pod_command` stops a live run (that is how a cancel of a running
//! execution reaches it). Each run is a task of its own; the coordinator's queue policy bounds
//! how many are live, and the executor has its own slot limit.
//!
//! While a run goes on, the executor's progress becomes the `pod_*` events of the contract
//! (see [`pod`]), each step's events stored in one batch.
//!
//! A run happens at most once: it starts only after the `scheduled → running` compare-and-set
//! succeeded, so a redelivered command is skipped. Once that CAS succeeded the run's task
//! always reports an outcome (it retries the emission), and an execution still `running` when
//! a worker starts was interrupted and is ended as a system error, never re-run.

pub(crate) mod outcome;
mod pod;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunRequest, StoredEvent};
use integr8s_core::execution::ExecutionStatus;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Executor, RunControl, RunOutcome, RunSpec, Store};
use integr8s_core::ports::{ExecError, RunProgress, RunReport};
use integr8s_core::runtime::RuntimeRegistry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::EngineConfig;
use crate::consumer::{consume_with_dlq, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;
use outcome::{exit_code_of, map_report, system_failure, CancelRequest};
use pod::Placement;

const TOPICS: &[EventType] = &[EventType::CreatePodCommand, EventType::DeletePodCommand];

/// How many ids of executions cancelled before their run started are remembered.
const CANCELLED_BEFORE_START_CAPACITY: usize = 10_000;

/// Attempts at storing a run's outcome event before giving up (the restart recovery then ends
/// the execution).
const OUTCOME_EMIT_ATTEMPTS: u32 = 6;

pub(crate) const RESTART_MESSAGE: &str = "run interrupted by a service restart";
pub(crate) const SHUTDOWN_MESSAGE: &str = "run interrupted by service shutdown";

/// Runs scripts for `create_pod_command` through an [`Executor`] and stops them on
/// `delete_pod_command`.
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
    cancelled_by: Arc<OnceLock<CancelRequest>>,
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
            EventPayload::DeletePodCommand {
                execution_id,
                reason,
                ..
            } => {
                let request = CancelRequest {
                    by: env
                        .metadata
                        .user_id
                        .clone()
                        .unwrap_or_else(|| "system".to_owned()),
                    reason: Some(reason.clone()),
                };
                self.cancel(execution_id, request);
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

    fn cancel(&self, execution_id: &str, request: CancelRequest) {
        if let Some(run) = lock(&self.live).get(execution_id) {
            tracing::info!(execution_id, "cancelling the live run");
            // Only the first cancel names who asked.
            let _ = run.cancelled_by.set(request);
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
        let mut placement = Placement::default();
        let events = match self.registry.resolve(&run.language, &run.language_version) {
            Err(e) => vec![system_failure(&id, e.to_string())],
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
                let result = self.follow_run(&cause, &spec, &live, &mut placement).await;
                outcome_events(&id, &run, result, &live, &placement)
            }
        };
        lock(&self.live).remove(&id);
        if let Some(first) = events.first() {
            tracing::info!(outcome = %first.event_type(), "run ended");
        }
        let envs: Vec<Envelope> = events
            .into_iter()
            .map(|p| self.outbox.caused_by(&cause, p))
            .collect();
        self.emit_outcome(&envs).await;
    }

    /// Runs the spec while turning the executor's progress into events, in order.
    async fn follow_run(
        &self,
        cause: &Envelope,
        spec: &RunSpec,
        live: &LiveRun,
        placement: &mut Placement,
    ) -> Result<RunReport, ExecError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let control = RunControl {
            cancel: live.cancel.clone(),
            progress: Some(tx),
        };
        let done = CancellationToken::new();
        let run = async {
            let result = self.executor.run(spec, control).await;
            done.cancel();
            result
        };
        let follow = async {
            loop {
                // Steps reported before the run returned are all handled, in order.
                let step = tokio::select! {
                    biased;
                    step = rx.recv() => step,
                    () = done.cancelled() => rx.try_recv().ok(),
                };
                let Some(step) = step else { break };
                self.progress(cause, &spec.execution_id, step, placement)
                    .await;
            }
        };
        let (result, ()) = tokio::join!(run, follow);
        result
    }

    /// Stores the events of one progress step in one batch. A failure is logged: progress
    /// events are informative, the outcome is what must be stored.
    async fn progress(
        &self,
        cause: &Envelope,
        execution_id: &str,
        step: RunProgress,
        placement: &mut Placement,
    ) {
        let payloads = match (step, &placement.place) {
            (RunProgress::Placed { place }, None) => {
                let events = pod::placed(execution_id, &place);
                placement.place = Some(place);
                events
            }
            (RunProgress::Started, Some(place)) if !placement.started => {
                placement.started = true;
                pod::started(execution_id, place)
            }
            (step, _) => {
                tracing::debug!(?step, "progress step out of order; ignored");
                return;
            }
        };
        let envs: Vec<Envelope> = payloads
            .into_iter()
            .map(|p| self.outbox.caused_by(cause, p))
            .collect();
        if let Err(e) = self.outbox.emit_all(&envs).await {
            tracing::warn!(error = %e, "progress events not stored");
        }
    }

    /// Stores the outcome events in one batch, retrying with back-off: the command was acked,
    /// so this is the only chance to end the execution before a restart. The envelopes keep
    /// their ids across attempts, so a retry never stores an event twice.
    async fn emit_outcome(&self, envs: &[Envelope]) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=OUTCOME_EMIT_ATTEMPTS {
            match self.outbox.emit_all(envs).await {
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

/// The outcome event of a run, followed by its `pod_*` end events when it was placed.
fn outcome_events(
    id: &str,
    run: &RunRequest,
    result: Result<RunReport, ExecError>,
    live: &LiveRun,
    placement: &Placement,
) -> Vec<EventPayload> {
    let report = match result {
        Ok(report) => report,
        Err(e) => return vec![system_failure(id, e.to_string())],
    };
    let outcome = match (report.outcome, live.cancelled_by.get()) {
        (RunOutcome::Cancelled, None) => system_failure(id, SHUTDOWN_MESSAGE.to_owned()),
        (_, cancel) => map_report(id, &report, &run.limits, cancel, placement.started),
    };
    let mut events = vec![outcome];
    if let Some(place) = &placement.place {
        let exit_code = exit_code_of(report.outcome);
        events.extend(pod::ended(id, place, report.outcome, exit_code));
    }
    events
}
