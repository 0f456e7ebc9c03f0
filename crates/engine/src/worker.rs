//! The local worker: turns `create_pod_command` into a sandboxed run on this host and reports
//! how it ended; `delete_pod_command` stops a live run (that is how a cancel of a running
//! execution reaches it). Each run is a task of its own; the coordinator's queue policy bounds
//! how many are live, and the executor has its own slot limit.
//!
//! While a run goes on, the executor's progress becomes the `pod_*` events of the contract
//! (see [`pod`]), each step's events stored in one batch.
//!
//! Any number of workers may share a store and a bus. Each has an id and a lease in the store
//! ([`lease`]): the run commands are shared by the `local-worker` consumer group, and the
//! worker that takes one owns its run:
//! - a run happens at most once: it is owned only after the `scheduled → running`
//!   compare-and-set recorded the owner (a redelivered command is skipped), and it is handed to
//!   the executor only after a second compare-and-set, fenced by that ownership, marked it
//!   started;
//! - once owned, the run's task always reports an outcome (it retries while the worker runs),
//!   fenced by its ownership so a run settled as lost meanwhile gets no second end; runs still
//!   owned by a worker that starts again under the same id were interrupted and are ended as a
//!   system error (or scheduled again if they never started); runs of a worker whose lease
//!   expired are settled the same way by another worker ("worker lost");
//! - cancels reach every worker ([`cancels`]): live through the bus's fan-out, and from the
//!   store's event log as a catch-up, so the owner stops the run wherever it is.

mod cancels;
mod lease;
pub(crate) mod outcome;
mod pod;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunRequest, StoredEvent};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, Executor, LocalWorkerStore, RunControl, RunOutcome, RunSpec};
use integr8s_core::ports::{ExecError, RunProgress, RunReport};
use integr8s_core::runtime::RuntimeRegistry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{EngineConfig, WorkerConfig};
use crate::consumer::{consume_with_dlq, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;
use outcome::{exit_code_of, map_report, system_failure, CancelRequest};
use pod::Placement;

const TOPICS: &[EventType] = &[EventType::CreatePodCommand];

/// How many cancels of runs that are not live here are remembered (a run command may come
/// after its cancel, or be handed to this worker later).
const CANCELLED_BEFORE_START_CAPACITY: usize = 10_000;

/// Attempts at storing a run's outcome event once the worker is stopping, before giving up
/// (the restart recovery, or the lost-run settlement of another worker, then ends the
/// execution). While the worker runs, it keeps trying: it still holds the run's lease, so no
/// one else would end the execution.
const OUTCOME_EMIT_ATTEMPTS: u32 = 6;
/// Longest wait between two attempts at storing an outcome.
const OUTCOME_RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

pub(crate) const RESTART_MESSAGE: &str = "run interrupted by a service restart";
pub(crate) const SHUTDOWN_MESSAGE: &str = "run interrupted by service shutdown";

/// Runs scripts for `create_pod_command` through an [`Executor`] and stops them on
/// `delete_pod_command`.
pub struct LocalWorker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn LocalWorkerStore>,
    bus: Arc<dyn EventBus>,
    outbox: Outbox,
    executor: Arc<dyn Executor>,
    registry: Arc<RuntimeRegistry>,
    config: EngineConfig,
    worker: WorkerConfig,
    runs: Mutex<Runs>,
    tasks: TaskTracker,
    /// Cancelled when the worker stops taking commands.
    stopping: CancellationToken,
}

/// The live runs and the cancels that found no live run, under one lock: a cancel and a start
/// racing for the same execution always meet in one of the two.
#[derive(Default)]
struct Runs {
    live: HashMap<String, LiveRun>,
    cancelled: RecentCancels,
}

/// A run in progress.
#[derive(Clone, Default)]
struct LiveRun {
    cancel: CancellationToken,
    /// Who asked for the cancel; unset when the worker stopped the run on shutdown.
    cancelled_by: Arc<OnceLock<CancelRequest>>,
    /// The store says this worker no longer owns the run (another settled it as lost): it is
    /// stopped and its outcome is not reported.
    abandoned: Arc<AtomicBool>,
}

/// A bounded map that forgets its oldest entries.
#[derive(Default)]
struct RecentCancels {
    order: VecDeque<String>,
    requests: HashMap<String, CancelRequest>,
}

impl RecentCancels {
    fn insert(&mut self, id: &str, request: CancelRequest) {
        if self.requests.contains_key(id) {
            return;
        }
        self.requests.insert(id.to_owned(), request);
        self.order.push_back(id.to_owned());
        while self.order.len() > CANCELLED_BEFORE_START_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.requests.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<&CancelRequest> {
        self.requests.get(id)
    }
}

impl LocalWorker {
    pub fn new(
        store: Arc<dyn LocalWorkerStore>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        executor: Arc<dyn Executor>,
        registry: Arc<RuntimeRegistry>,
        config: EngineConfig,
        worker: WorkerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                outbox,
                executor,
                registry,
                config,
                worker,
                runs: Mutex::default(),
                tasks: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// Takes the lease now, with this worker's report (installed runtimes, executor health),
    /// so that what the worker can run is known before [`LocalWorker::run`] gets going (which
    /// takes it again).
    pub async fn register(&self) -> Result<(), EngineError> {
        Ok(self.inner.renew_lease().await?)
    }

    /// Takes the lease, settles the runs a previous start under the same id left behind, then
    /// runs commands until `shutdown`. On shutdown the live runs are stopped, reported as
    /// interrupted and waited for, and the lease is given up.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.renew_lease().await?;
        inner.recover().await?;
        let background = shutdown.child_token();
        let cursor = inner.store.last_seq().await?;
        let loops = [
            tokio::spawn(inner.clone().lease_loop(background.clone())),
            tokio::spawn(inner.clone().watch_cancels(background.clone())),
            tokio::spawn(inner.clone().poll_cancels(cursor, background.clone())),
        ];
        let result = consume_with_dlq(
            inner.store.as_ref(),
            inner.bus.as_ref(),
            TOPICS,
            groups::LOCAL_WORKER,
            inner.config.max_handler_attempts,
            inner,
            &shutdown,
        )
        .await;
        background.cancel();
        inner.stopping.cancel();
        for task in loops {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a worker loop panicked");
            }
        }
        let live: Vec<LiveRun> = lock(&inner.runs).live.values().cloned().collect();
        if !live.is_empty() {
            tracing::info!(runs = live.len(), "stopping live runs");
        }
        for run in live {
            run.cancel.cancel();
        }
        inner.tasks.close();
        inner.tasks.wait().await;
        // Runs whose outcome could not be stored stay owned by this id: once the lease is
        // gone, another worker settles them.
        if let Err(e) = inner.store.drop_lease(&inner.worker.id).await {
            tracing::warn!(error = %e, "could not give the worker lease up; it expires by itself");
        }
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
            _ => Ok(()),
        }
    }
}

impl Inner {
    async fn start(
        self: &Arc<Self>,
        cause: &Envelope,
        run: &RunRequest,
    ) -> Result<(), EngineError> {
        let id = run.execution_id.as_str();
        if !self.store.claim_run(id, &self.worker.id).await? {
            tracing::info!(
                execution_id = id,
                "not scheduled (already run, cancelled or deleted); skipped"
            );
            return Ok(());
        }
        let live = LiveRun::default();
        {
            let mut runs = lock(&self.runs);
            if let Some(request) = runs.cancelled.get(id) {
                // Cancelled before this worker took it: it ends without running.
                let _ = live.cancelled_by.set(request.clone());
                live.cancel.cancel();
            }
            runs.live.insert(id.to_owned(), live.clone());
        }
        let span = tracing::info_span!("run", execution_id = id, worker_id = %self.worker.id);
        let task = self.clone().run_to_end(cause.clone(), run.clone(), live);
        self.tasks.spawn(task.instrument(span));
        Ok(())
    }

    /// Runs one script and reports its outcome; never returns without having tried to, unless
    /// the run turned out not to be this worker's any more.
    async fn run_to_end(self: Arc<Self>, cause: Envelope, run: RunRequest, live: LiveRun) {
        let id = run.execution_id.clone();
        let mut placement = Placement::default();
        let events = match self.registry.resolve(&run.language, &run.language_version) {
            Err(e) => vec![system_failure(&id, e.to_string())],
            Ok(_) if live.cancel.is_cancelled() => match live.cancelled_by.get() {
                Some(request) => vec![outcome::cancelled_before_start(&id, request)],
                None => vec![system_failure(&id, SHUTDOWN_MESSAGE.to_owned())],
            },
            Ok(runtime) => match self.store.mark_run_started(&id, &self.worker.id).await {
                Ok(false) => {
                    tracing::warn!("the run is no longer owned by this worker; not started");
                    lock(&self.runs).live.remove(&id);
                    return;
                }
                Err(e) => vec![system_failure(
                    &id,
                    format!("the run could not be marked started: {e}"),
                )],
                Ok(true) => {
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
                        prestart: runtime.prestart,
                    };
                    let result = self.follow_run(&cause, &spec, &live, &mut placement).await;
                    outcome_events(&id, &run, result, &live, &placement)
                }
            },
        };
        lock(&self.runs).live.remove(&id);
        if live.abandoned.load(Ordering::SeqCst) {
            tracing::warn!("run ended after it was settled as lost; its outcome is dropped");
            return;
        }
        if let Some(first) = events.first() {
            tracing::info!(outcome = %first.event_type(), "run ended");
        }
        let envs: Vec<Envelope> = events
            .into_iter()
            .map(|p| self.outbox.caused_by(&cause, p))
            .collect();
        self.emit_outcome(&id, &envs).await;
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

    /// Stores the outcome events in one batch, fenced by this worker's ownership of the run
    /// (so that a run settled as lost meanwhile does not get a second end), retrying with
    /// back-off for as long as the worker runs (a store outage of any length): the command was
    /// acked and this worker keeps the run's lease, so no one else would end the execution.
    /// Once the worker stops, a few more attempts, then its lease expiry hands the run to the
    /// lost-run settlement. The envelopes keep their ids across attempts, so a retry never stores an
    /// event twice; an attempt whose commit went through unanswered finds the run reported,
    /// and the outbox relay publishes what it stored.
    async fn emit_outcome(&self, id: &str, envs: &[Envelope]) {
        let mut delay = Duration::from_millis(100);
        let mut failed_while_stopping = 0;
        loop {
            let error = match self.store.report_run(id, &self.worker.id, envs).await {
                Ok(Some(stored)) => {
                    for event in &stored {
                        self.outbox.publish_stored(event).await;
                    }
                    return;
                }
                Ok(None) => {
                    tracing::warn!("the run is no longer this worker's (settled as lost); its outcome is dropped");
                    return;
                }
                Err(e) => e,
            };
            if self.stopping.is_cancelled() {
                failed_while_stopping += 1;
                if failed_while_stopping >= OUTCOME_EMIT_ATTEMPTS {
                    tracing::error!(error = %error, "the run outcome could not be stored; once this worker's lease expires, another worker ends the execution");
                    return;
                }
            }
            tracing::warn!(error = %error, "storing the run outcome failed; retrying");
            if self.stopping.is_cancelled() {
                tokio::time::sleep(delay).await;
            } else {
                // A long wait is cut short when the worker starts stopping.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = self.stopping.cancelled() => {}
                }
            }
            delay = (delay * 2).min(OUTCOME_RETRY_MAX_DELAY);
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
