//! The pod monitor: watches the executor pods (list, then watch from the list's resource
//! version; a `410 Gone` relists) and turns what the cluster did into the local executor's
//! events: `pod_scheduled` + `execution_started`, `pod_running` + `execution_running`, the
//! outcome event with the container's output and usage, then how the pod ended, and
//! `pod_deleted` when it is gone.
//!
//! Events are deduplicated by the event store: before the first step of an execution the
//! monitor reads what was stored for it, and an outcome is re-checked right before it is
//! emitted, so a restarted monitor (or a relist) emits only what is missing. One monitor runs
//! per namespace (its Deployment has one replica).
//!
//! Nothing is reported for a pod before the k8s worker committed its creation (`pod_created`,
//! stored once the execution is running): a pod whose worker died before that waits for the
//! redelivered command. Such observations, and those whose events could not be stored, are
//! retried every 250 ms. A periodic reconcile catches what no watch event tells: a `running`
//! execution whose pod is gone (deleted while nobody watched) is ended.

mod observe;
mod outcome;
mod progress;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use integr8s_core::event::{Envelope, EventPayload};
use integr8s_core::execution::ExecutionStatus;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::PodMonitorStore;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

pub use observe::{Ending, PodView};
use progress::Known;

use crate::config::K8sConfig;
use crate::error::{is_not_found, K8sError};
use crate::events;
use crate::manifest::{pod_name, Origin, EXECUTOR_SELECTOR};

/// How many executions' progress is kept in memory (the store has the rest).
const KNOWN_CAPACITY: usize = 10_000;
/// How often observations that could not be stored, or wait for the worker, are retried.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// Watches executor pods and reports their runs.
pub struct PodMonitor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn PodMonitorStore>,
    outbox: Outbox,
    pods: Api<Pod>,
    config: K8sConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What was stored for each execution seen lately.
    known: HashMap<String, Known>,
    /// Pods that exist, by name (complete once the first list is done).
    present: BTreeSet<String>,
    synced: bool,
    /// Pods whose observation could not be stored; observed again by the reconcile.
    retry: BTreeSet<String>,
}

impl PodMonitor {
    pub fn new(
        client: kube::Client,
        config: K8sConfig,
        store: Arc<dyn PodMonitorStore>,
        outbox: Outbox,
    ) -> Result<Self, K8sError> {
        config.validate()?;
        let pods = Api::namespaced(client, &config.namespace);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                outbox,
                pods,
                config,
                state: Mutex::default(),
            }),
        })
    }

    /// Watches until `shutdown`. Watch errors are retried with back-off by the watcher.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), K8sError> {
        let inner = &self.inner;
        let config = watcher::Config::default().labels(EXECUTOR_SELECTOR);
        let stream = watcher::watcher(inner.pods.clone(), config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut tick = tokio::time::interval(inner.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_tick = tokio::time::interval(RETRY_INTERVAL);
        retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listing = BTreeSet::new();
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    inner.reconcile().await;
                    continue;
                }
                _ = retry_tick.tick() => {
                    inner.retry().await;
                    continue;
                }
                event = stream.next() => event,
            };
            match event {
                Some(Ok(Event::Init)) => listing.clear(),
                Some(Ok(Event::InitApply(pod))) => {
                    listing.insert(pod.name_any());
                    inner.observe(&pod).await;
                }
                Some(Ok(Event::InitDone)) => {
                    let vanished: Vec<String> = {
                        let mut state = inner.lock();
                        let before =
                            std::mem::replace(&mut state.present, std::mem::take(&mut listing));
                        state.synced = true;
                        before.difference(&state.present).cloned().collect()
                    };
                    tracing::info!(vanished = vanished.len(), "executor pods listed; watching");
                    // Deleted while the watch was down (before a relist): no DELETED event came.
                    for name in vanished {
                        inner.vanished(&name).await;
                    }
                    inner.reconcile().await;
                }
                Some(Ok(Event::Apply(pod))) => inner.observe(&pod).await,
                Some(Ok(Event::Delete(pod))) => inner.on_deleted(&pod).await,
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; resuming"),
                None => return Ok(()),
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was stored for the execution (from memory, else from the store; read again while
    /// the creation is not committed).
    async fn known(&self, execution_id: &str) -> Result<Known, K8sError> {
        if let Some(k) = self.lock().known.get(execution_id) {
            if k.created {
                return Ok(k.clone());
            }
        }
        let known = Known::load(self.store.as_ref(), execution_id).await?;
        self.remember(execution_id, known.clone());
        Ok(known)
    }

    fn remember(&self, execution_id: &str, known: Known) {
        let mut state = self.lock();
        if state.known.len() >= KNOWN_CAPACITY && !state.known.contains_key(execution_id) {
            // Forgetting is safe: the store is read again on the next sight.
            if let Some(old) = state.known.keys().next().cloned() {
                state.known.remove(&old);
            }
        }
        state.known.insert(execution_id.to_owned(), known);
    }

    async fn observe(&self, pod: &Pod) {
        let name = pod.name_any();
        self.lock().present.insert(name.clone());
        self.lock().retry.remove(&name);
        let result = self.try_observe(pod).await;
        let mut state = self.lock();
        match result {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "pod observation not stored; retried by the reconcile");
                state.retry.insert(name);
            }
        }
    }

    async fn try_observe(&self, pod: &Pod) -> Result<(), K8sError> {
        let Some(view) = PodView::of(pod) else {
            return Ok(());
        };
        let id = view.execution_id.as_str();
        let mut known = self.known(id).await?;
        if !known.created {
            // The worker has not committed the creation yet (it stores `pod_created` once the
            // execution is running); the pod is observed again until it has.
            tracing::debug!(pod = view.pod_name, "creation not committed yet; waiting");
            self.lock().retry.insert(view.pod_name.clone());
            return Ok(());
        }
        if known.ended {
            // Reported already (by this monitor, or ended by a worker, the saga or a recovery).
            return Ok(());
        }
        let mut payloads = Vec::new();
        let reached_node = view.node.is_some() || view.started || view.ending.is_some();
        if reached_node && !known.scheduled {
            let node = view.node.clone().unwrap_or_default();
            payloads.extend(events::scheduled(
                id,
                &view.pod_name,
                &node,
                view.container_id.clone(),
            ));
            known.scheduled = true;
        }
        if view.started && !known.running {
            payloads.extend(events::running(id, &view.pod_name, view.containers.clone()));
            known.running = true;
        }
        if let Some(ending) = &view.ending {
            known.ended = Known::outcome_stored(self.store.as_ref(), id).await?;
            if !known.ended {
                payloads.extend(outcome::ended(&self.pods, &view, ending).await?);
                known.ended = true;
            }
        }
        if !payloads.is_empty() {
            self.emit(&view.origin, payloads).await?;
        }
        self.remember(id, known);
        Ok(())
    }

    async fn on_deleted(&self, pod: &Pod) {
        let name = pod.name_any();
        {
            let mut state = self.lock();
            state.present.remove(&name);
            state.retry.remove(&name);
        }
        let Some(view) = PodView::of(pod) else {
            return;
        };
        if let Err(e) = self
            .gone(&view.execution_id, &name, &view.origin, view.started)
            .await
        {
            tracing::warn!(pod = name, error = %e, "pod deletion not stored; the reconcile retries if the execution is still running");
        }
    }

    /// A pod seen before a relist is not in the new list.
    async fn vanished(&self, name: &str) {
        let Some(execution_id) = name.strip_prefix("executor-") else {
            return;
        };
        let user_id = match self.store.execution(execution_id).await {
            Ok(Some(e)) => Some(e.user_id),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "could not read the execution of a vanished pod");
                return;
            }
        };
        let origin = Origin {
            user_id,
            correlation_id: None,
            saga_id: String::new(),
        };
        if let Err(e) = self.gone(execution_id, name, &origin, false).await {
            tracing::warn!(pod = name, error = %e, "vanished pod not reported; the reconcile retries if the execution is still running");
        }
    }

    /// The pod of an execution is gone: report its end if nothing did, then `pod_deleted`.
    async fn gone(
        &self,
        execution_id: &str,
        pod: &str,
        origin: &Origin,
        started: bool,
    ) -> Result<(), K8sError> {
        let known = self.known(execution_id).await?;
        if known.deleted || !known.created {
            // Reported already, or never committed by the worker (a redelivered command
            // creates it again; a compensation or a cancel ended the execution already).
            return Ok(());
        }
        let mut payloads = Vec::new();
        if !Known::outcome_stored(self.store.as_ref(), execution_id).await? {
            let cancel = Known::cancel_request(self.store.as_ref(), execution_id).await?;
            let reason = if cancel.is_some() {
                "cancelled"
            } else {
                "deleted outside integr8s"
            };
            payloads.extend(outcome::deleted_early(
                execution_id,
                pod,
                cancel,
                started || known.running,
            ));
            payloads.push(events::deleted(execution_id, pod, reason));
        } else {
            payloads.push(events::deleted(
                execution_id,
                pod,
                "deleted after the run ended",
            ));
        }
        self.emit(origin, payloads).await?;
        self.lock().known.remove(execution_id);
        Ok(())
    }

    async fn emit(&self, origin: &Origin, payloads: Vec<EventPayload>) -> Result<(), K8sError> {
        let envs: Vec<Envelope> = payloads
            .into_iter()
            .map(|p| {
                Envelope::new(p, self.outbox.metadata(origin.user_id.clone()))
                    .with_correlation(origin.correlation_id.clone())
            })
            .collect();
        self.outbox.emit_all(&envs).await?;
        Ok(())
    }

    /// Observes again the pods whose observation could not be stored or had to wait.
    async fn retry(&self) {
        let retry = self.lock().retry.clone();
        for name in retry {
            match self.pods.get(&name).await {
                Ok(pod) => self.observe(&pod).await,
                Err(e) if is_not_found(&e) => {
                    self.lock().retry.remove(&name);
                }
                Err(e) => tracing::warn!(pod = name, error = %e, "could not read a pod to retry"),
            }
        }
    }

    /// Ends `running` executions whose pod is gone.
    async fn reconcile(&self) {
        if !self.lock().synced {
            return;
        }
        let running = match self.store.executions_in(&[ExecutionStatus::Running]).await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!(error = %e, "could not list running executions");
                return;
            }
        };
        let grace = chrono::Duration::from_std(self.config.missing_pod_grace)
            .unwrap_or(chrono::Duration::MAX);
        for execution in running {
            let id = execution.execution_id.as_str();
            let name = pod_name(id);
            if self.lock().present.contains(&name)
                || integr8s_core::now() - execution.updated_at < grace
            {
                continue;
            }
            match self.pods.get(&name).await {
                Ok(pod) => self.observe(&pod).await,
                Err(e) if is_not_found(&e) => {
                    tracing::warn!(
                        execution_id = id,
                        "running execution without a pod; ending it"
                    );
                    let origin = Origin {
                        user_id: Some(execution.user_id.clone()),
                        correlation_id: None,
                        saga_id: String::new(),
                    };
                    if let Err(e) = self.gone(id, &name, &origin, false).await {
                        tracing::warn!(execution_id = id, error = %e, "could not end an execution without a pod");
                    }
                }
                Err(e) => tracing::warn!(execution_id = id, error = %e, "could not check a pod"),
            }
        }
    }
}
