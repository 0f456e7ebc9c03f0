//! The coordinator: admits requested executions into the queue and dispatches them into
//! execution slots under the queue policy.
//!
//! Any number of coordinators may run at once: claims are atomic in the store (the caps are
//! decided under the store's claim lock), and within one process a mutex keeps a single
//! dispatch loop going. A claim is followed at once by the execution's `queued → scheduled`,
//! fenced by the claim (the store schedules only while the claim is still the one taken); a
//! claim still standing `claim_timeout` later belongs to a coordinator that stopped or stalled
//! in between, and any coordinator hands it back to the queue (compare-and-set on the claim,
//! so only that claim, and only once). A stalled coordinator that wakes up finds its claim
//! gone and changes nothing. Recovery never touches what a live coordinator may be
//! doing: it only completes what is older than `claim_timeout`.

use std::sync::Arc;

use async_trait::async_trait;
use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunRequest, StoredEvent};
use integr8s_core::execution::ExecutionStatus;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{CoordinatorStore, EventBus, QueueEntry, QueuePolicy, ScheduleClaim};
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::{gauge, histogram};
use integr8s_telemetry::trace;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::EngineConfig;
use crate::consumer::{consume_with_dlq, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;

const TOPICS: &[EventType] = &[
    EventType::ExecutionRequested,
    EventType::ResultStored,
    EventType::ResultFailed,
];

/// Admits `execution_requested` into the queue and moves queued executions to `scheduled`
/// (emitting `execution_accepted`) while the policy has free slots.
pub struct Coordinator {
    bus: Arc<dyn EventBus>,
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CoordinatorStore>,
    outbox: Outbox,
    config: EngineConfig,
    settings: EffectiveSettings,
    dispatching: Mutex<()>,
}

impl Coordinator {
    pub fn new(
        store: Arc<dyn CoordinatorStore>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: EngineConfig,
        settings: EffectiveSettings,
    ) -> Self {
        Self {
            bus,
            inner: Arc::new(Inner {
                store,
                outbox,
                config,
                settings,
                dispatching: Mutex::new(()),
            }),
        }
    }

    /// Recovers the queue after a restart, then admits and dispatches until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        self.inner.recover().await?;
        self.inner.dispatch().await?;
        // The ticker stops with `shutdown`, and with the consumer when that fails.
        let stop_ticker = shutdown.child_token();
        let ticker = tokio::spawn(self.inner.clone().tick_loop(stop_ticker.clone()));
        let result = consume_with_dlq(
            self.inner.store.as_ref(),
            self.bus.as_ref(),
            TOPICS,
            groups::COORDINATOR,
            self.inner.config.max_handler_attempts,
            self.inner.as_ref(),
            &shutdown,
        )
        .await;
        stop_ticker.cancel();
        if let Err(e) = ticker.await {
            tracing::error!(error = %e, "dispatch ticker panicked");
        }
        result
    }
}

#[async_trait]
impl Handler for Inner {
    async fn handle(&self, event: &StoredEvent, _attempt: Attempt) -> Result<(), EngineError> {
        if let EventPayload::ExecutionRequested(run) = &event.envelope.payload {
            self.admit(event, run).await?;
        }
        self.dispatch().await
    }
}

impl Inner {
    async fn tick_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let repair_every = (self.config.claim_timeout / 4).max(self.config.tick);
        let mut repaired = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            if repaired.elapsed() >= repair_every {
                repaired = tokio::time::Instant::now();
                if let Err(e) = self.requeue_stale_claims().await {
                    tracing::warn!(error = %e, "handing back stale claims failed");
                }
                if let Err(e) = self.reannounce_stale_scheduled().await {
                    tracing::warn!(error = %e, "re-announcing scheduled executions failed");
                }
            }
            if let Err(e) = self.dispatch().await {
                tracing::warn!(error = %e, "dispatch on tick failed");
            }
            self.report_queue().await;
        }
    }

    /// Sets the queue gauges from the store (the store is the one owner of the queue, so every
    /// coordinator reports the same figures).
    async fn report_queue(&self) {
        match self.store.queue_counts().await {
            Ok((pending, active)) => {
                gauge!(catalogue::EXECUTION_QUEUE_DEPTH).set(pending as f64);
                gauge!(catalogue::EXECUTION_QUEUE_ACTIVE).set(active as f64);
            }
            Err(e) => tracing::debug!(error = %e, "queue counts not read"),
        }
    }

    /// Enqueues a requested execution (once) and announces its queue position.
    async fn admit(&self, event: &StoredEvent, run: &RunRequest) -> Result<(), EngineError> {
        let env = &event.envelope;
        let Some(execution) = self.store.execution(&run.execution_id).await? else {
            tracing::info!("execution no longer exists; not queued");
            return Ok(());
        };
        if execution.status != ExecutionStatus::Queued {
            tracing::debug!(status = execution.status.as_str(), "already past the queue");
            return Ok(());
        }
        let entry = QueueEntry {
            execution_id: run.execution_id.clone(),
            user_id: env
                .metadata
                .user_id
                .clone()
                .unwrap_or_else(|| execution.user_id.clone()),
            // The stored priority: an admin may have changed it since the request.
            priority: execution.priority,
            enqueued_at: env.timestamp,
            active_since: None,
        };
        if self.store.enqueue(&entry).await? {
            self.announce_queued(&entry, env.metadata.correlation_id.clone())
                .await?;
        }
        Ok(())
    }

    async fn announce_queued(
        &self,
        entry: &QueueEntry,
        correlation_id: Option<String>,
    ) -> Result<(), EngineError> {
        let position = self
            .store
            .queue_position(
                &entry.execution_id,
                &self.config.queue,
                integr8s_core::now(),
            )
            .await?;
        let payload = EventPayload::ExecutionQueued {
            execution_id: entry.execution_id.clone(),
            position_in_queue: position.map(|p| i64::try_from(p).unwrap_or(i64::MAX)),
            estimated_start_time: None,
        };
        self.outbox
            .emit(payload, Some(entry.user_id.clone()), correlation_id)
            .await?;
        Ok(())
    }

    /// The queue policy in force: the configured one, with the global cap from the settings in
    /// force (read on every dispatch round, so an admin's change applies at once).
    async fn policy(&self) -> Result<QueuePolicy, EngineError> {
        Ok(self.settings.queue_policy(self.config.queue).await?)
    }

    /// Claims entries while the policy allows and schedules their executions.
    async fn dispatch(&self) -> Result<(), EngineError> {
        let _only_one = self.dispatching.lock().await;
        let policy = self.policy().await?;
        while let Some(entry) = self.store.claim_next(&policy, integr8s_core::now()).await? {
            let id = entry.execution_id.as_str();
            let Some(claim) = entry.active_since else {
                tracing::error!(execution_id = id, "a claim came back without its token");
                continue;
            };
            // Fenced by the claim: if this dispatch stalled past `claim_timeout`, its claim may
            // have been handed back (and taken by another coordinator) meanwhile. The
            // `execution_accepted` is stored in the transaction that schedules.
            let (span, accepted) = self.accepted(&entry).await;
            match self
                .store
                .schedule_claimed_with_events(id, claim, std::slice::from_ref(&accepted))
                .await
            {
                Ok((ScheduleClaim::Scheduled, stored)) => {
                    let waited = (integr8s_core::now() - entry.enqueued_at)
                        .to_std()
                        .unwrap_or_default();
                    histogram!(catalogue::EXECUTION_QUEUE_WAIT_TIME_SECONDS, "priority" => entry.priority.as_str())
                        .record(waited.as_secs_f64());
                    async {
                        tracing::info!(execution_id = %entry.execution_id, priority = entry.priority.as_str(), "execution scheduled");
                        for event in &stored {
                            self.outbox.publish_stored(event).await;
                        }
                    }
                    .instrument(span)
                    .await;
                }
                Ok((ScheduleClaim::NotQueued, _)) => {
                    tracing::info!(
                        execution_id = id,
                        "claimed execution is no longer queued; slot released"
                    );
                }
                Ok((ScheduleClaim::ClaimLost, _)) => {
                    tracing::warn!(
                        execution_id = id,
                        "claim handed back while this dispatch stalled; left to its new holder"
                    );
                }
                Err(e) => {
                    // Hand the claim back so the execution is tried again (if this fails
                    // too, the claim goes stale and any coordinator hands it back).
                    self.store.requeue_claim(id, claim).await?;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The `execution_accepted` of a claimed entry, built in the span of its scheduling.
    async fn accepted(&self, entry: &QueueEntry) -> (tracing::Span, Envelope) {
        let span = self.schedule_span(&entry.execution_id).await;
        let env = span.in_scope(|| {
            let payload = EventPayload::ExecutionAccepted {
                execution_id: entry.execution_id.clone(),
                queue_position: 0,
                estimated_wait_seconds: None,
                priority: entry.priority,
            };
            Envelope::new(payload, self.outbox.metadata(Some(entry.user_id.clone())))
                .with_correlation(None)
        });
        (span, env)
    }

    async fn accept(&self, entry: &QueueEntry) -> Result<(), EngineError> {
        let span = self.schedule_span(&entry.execution_id).await;
        async {
            tracing::info!(execution_id = %entry.execution_id, priority = entry.priority.as_str(), "execution scheduled");
            let payload = EventPayload::ExecutionAccepted {
                execution_id: entry.execution_id.clone(),
                queue_position: 0,
                estimated_wait_seconds: None,
                priority: entry.priority,
            };
            self.outbox
                .emit(payload, Some(entry.user_id.clone()), None)
                .await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The span of scheduling an execution: a dispatch round serves whichever executions are
    /// next, so with tracing on it joins the trace of the execution's request (read back from
    /// its `execution_requested` event); with tracing off it is the current span.
    async fn schedule_span(&self, execution_id: &str) -> tracing::Span {
        if !trace::enabled() {
            return tracing::Span::current();
        }
        let span = tracing::info_span!(
            parent: None,
            "schedule",
            execution_id,
            otel.name = "coordinator schedule",
        );
        match self
            .store
            .events_for_aggregate(execution_id, &[EventType::ExecutionRequested], 1)
            .await
        {
            Ok(events) => {
                let traceparent = events
                    .first()
                    .and_then(|e| e.envelope.metadata.traceparent.as_deref());
                trace::continue_trace(&span, traceparent);
            }
            Err(e) => tracing::debug!(error = %e, "trace context of the request not read"),
        }
        span
    }

    /// The time before which an unfinished step counts as abandoned.
    fn stale_before(&self) -> chrono::DateTime<chrono::Utc> {
        let timeout =
            chrono::Duration::from_std(self.config.claim_timeout).unwrap_or(chrono::Duration::MAX);
        integr8s_core::now() - timeout
    }

    /// Hands back the claims of dispatches that stopped between the claim and the schedule.
    async fn requeue_stale_claims(&self) -> Result<(), EngineError> {
        for entry in self.store.stale_claims(self.stale_before()).await? {
            let Some(since) = entry.active_since else {
                continue;
            };
            if self.store.requeue_claim(&entry.execution_id, since).await? {
                tracing::info!(execution_id = %entry.execution_id, "stale claim handed back to the queue");
            }
        }
        Ok(())
    }

    /// Repairs what a crash can leave behind between two store writes, without disturbing
    /// other coordinators at work:
    /// - active entries of executions that already ended (their slots are freed);
    /// - claims of queued executions older than `claim_timeout` (handed back);
    /// - queued executions with no queue entry at all (enqueued; a no-op if another
    ///   coordinator enqueues it meanwhile);
    /// - scheduled executions whose `execution_accepted` was never emitted, once they have
    ///   been scheduled for `claim_timeout` (a live dispatch emits it within moments).
    async fn recover(&self) -> Result<(), EngineError> {
        let store = self.store.as_ref();
        let (_, active) = store.queue_counts().await?;
        let in_flight = store
            .executions_in(&[ExecutionStatus::Scheduled, ExecutionStatus::Running])
            .await?;
        // Every active entry normally belongs to a scheduled or running execution; only when
        // there are more is the (long) list of ended executions worth scanning.
        if active > in_flight.len() as u64 {
            let terminal: Vec<_> = ExecutionStatus::ALL
                .into_iter()
                .filter(|s| s.is_terminal())
                .collect();
            for execution in store.executions_in(&terminal).await? {
                if store.release(&execution.execution_id).await? {
                    tracing::info!(execution_id = %execution.execution_id, "released the slot of an ended execution");
                }
            }
        }
        self.requeue_stale_claims().await?;
        for execution in store.executions_in(&[ExecutionStatus::Queued]).await? {
            // Never enqueued (the request is redelivered anyway, this is quicker), or its
            // entry was released by a dispatch that stopped before requeueing it. An entry
            // that exists, pending or claimed, is left alone.
            let entry = QueueEntry {
                execution_id: execution.execution_id.clone(),
                user_id: execution.user_id.clone(),
                priority: execution.priority,
                enqueued_at: execution.created_at,
                active_since: None,
            };
            if store.enqueue(&entry).await? {
                tracing::info!(execution_id = %entry.execution_id, "requeued after a restart");
                self.announce_queued(&entry, None).await?;
            }
        }
        self.reannounce_stale_scheduled().await
    }

    /// Emits `execution_accepted` for scheduled executions that never got it (their dispatch
    /// stopped between the schedule and the announcement, or the announcement failed), once
    /// they have been scheduled for `claim_timeout` (a live dispatch emits it within moments).
    /// Run at start and on every repair round, so no execution stays scheduled for good.
    async fn reannounce_stale_scheduled(&self) -> Result<(), EngineError> {
        let store = self.store.as_ref();
        let stale = self.stale_before();
        for execution in store
            .executions_in(&[ExecutionStatus::Scheduled])
            .await?
            .into_iter()
            .filter(|e| e.updated_at < stale)
        {
            let id = &execution.execution_id;
            let accepted = store
                .events_for_aggregate(id, &[EventType::ExecutionAccepted], 1)
                .await?;
            if accepted.is_empty() {
                tracing::info!(execution_id = %id, "re-announcing a scheduled execution");
                self.accept(&QueueEntry {
                    execution_id: id.clone(),
                    user_id: execution.user_id.clone(),
                    priority: execution.priority,
                    enqueued_at: execution.created_at,
                    active_since: None,
                })
                .await?;
            }
        }
        Ok(())
    }
}
