//! The saga orchestrator: one `execution_saga` per scheduled execution. It validates the
//! execution, allocates resources and sends the run command. The steps are idempotent; the
//! step log is persisted in the transaction that stores the run command (and after the steps
//! when there was none to send), so a redelivered `execution_accepted` continues where it
//! stopped (re-running at most the steps not yet recorded), and the command is stored once.
//! The saga's own events (`saga_started`, its end) are stored with the saga state they
//! announce. A failing step is compensated in reverse order and the execution is
//! ended (`execution_failed`, `system_error`) so its slot is freed. Run outcomes end the saga and release its allocation.

mod steps;

use std::sync::Arc;

use async_trait::async_trait;
use integr8s_core::error::StoreError;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunOutput, StoredEvent};
use integr8s_core::execution::{ErrorType, ExecutionStatus};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, SagaOrchestratorStore};
use integr8s_core::saga::{Saga, SagaState};
use tokio_util::sync::CancellationToken;

use crate::config::EngineConfig;
use crate::consumer::{consume_with_dlq, emit_caused_by, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;
use steps::{StepEnv, StepError};

const TOPICS: &[EventType] = &[
    EventType::ExecutionAccepted,
    EventType::ExecutionCompleted,
    EventType::ExecutionFailed,
    EventType::ExecutionTimeout,
    EventType::ExecutionCancelled,
];

/// Drives the execution saga of every accepted execution.
pub struct SagaOrchestrator {
    bus: Arc<dyn EventBus>,
    inner: Inner,
}

struct Inner {
    store: Arc<dyn SagaOrchestratorStore>,
    outbox: Outbox,
    config: EngineConfig,
}

/// How a saga ends when its execution ends.
enum Ending {
    Completed,
    Failed(String),
    Timeout(String),
    Cancelled { reason: String, by: String },
}

impl SagaOrchestrator {
    pub fn new(
        store: Arc<dyn SagaOrchestratorStore>,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: EngineConfig,
    ) -> Self {
        Self {
            bus,
            inner: Inner {
                store,
                outbox,
                config,
            },
        }
    }

    /// Consumes accepted executions and run outcomes until `shutdown`. Interrupted sagas
    /// resume through redelivery of their unacknowledged events.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        consume_with_dlq(
            self.inner.store.as_ref(),
            self.bus.as_ref(),
            TOPICS,
            groups::SAGA_ORCHESTRATOR,
            self.inner.config.max_handler_attempts,
            &self.inner,
            &shutdown,
        )
        .await
    }
}

#[async_trait]
impl Handler for Inner {
    async fn handle(&self, event: &StoredEvent, attempt: Attempt) -> Result<(), EngineError> {
        let env = &event.envelope;
        match &env.payload {
            EventPayload::ExecutionAccepted { execution_id, .. } => {
                self.on_accepted(env, execution_id, attempt).await
            }
            EventPayload::ExecutionCompleted { execution_id, .. } => {
                self.on_outcome(env, execution_id, Ending::Completed).await
            }
            EventPayload::ExecutionFailed {
                execution_id,
                exit_code,
                error_type,
                ..
            } => {
                let error = format!("{} (exit code {exit_code})", error_type.as_str());
                self.on_outcome(env, execution_id, Ending::Failed(error))
                    .await
            }
            EventPayload::ExecutionTimeout {
                execution_id,
                timeout_seconds,
                ..
            } => {
                let error = format!("execution timed out after {timeout_seconds} s");
                self.on_outcome(env, execution_id, Ending::Timeout(error))
                    .await
            }
            EventPayload::ExecutionCancelled {
                execution_id,
                cancelled_by,
                reason,
                ..
            } => {
                // The one `execution_cancelled` of a cancel comes after the run was stopped (or
                // instead of it), so the saga ends now. Topics are consumed independently: this
                // cancel may arrive before the `execution_accepted` it follows, and a saga ended
                // now makes that one a no-op instead of allocating for an execution that will
                // never run.
                let ending = Ending::Cancelled {
                    reason: reason.clone().unwrap_or_else(|| "cancelled".to_owned()),
                    by: cancelled_by.clone(),
                };
                let user_id = match self.store.execution(execution_id).await? {
                    Some(e) => e.user_id,
                    None => env.metadata.user_id.clone().unwrap_or_default(),
                };
                let (saga, _) = self
                    .store
                    .get_or_create_saga(&Saga::new(execution_id, &user_id))
                    .await?;
                if saga.state.is_terminal() {
                    return Ok(());
                }
                self.end(saga, env, ending).await
            }
            _ => Ok(()),
        }
    }
}

impl Inner {
    /// Saves the saga; `false` when it ended meanwhile (the store refuses to change a
    /// terminal saga), which stops the caller.
    async fn save(&self, saga: &mut Saga) -> Result<bool, StoreError> {
        saga.updated_at = integr8s_core::now();
        match self.store.save_saga(saga).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => {
                tracing::info!(saga_id = %saga.saga_id, "saga ended meanwhile");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn on_accepted(
        &self,
        cause: &Envelope,
        execution_id: &str,
        attempt: Attempt,
    ) -> Result<(), EngineError> {
        let user_id = cause.metadata.user_id.clone().unwrap_or_default();
        let (mut saga, _) = self
            .store
            .get_or_create_saga(&Saga::new(execution_id, &user_id))
            .await?;
        if saga.state.is_terminal() {
            return Ok(());
        }
        let env = StepEnv {
            store: self.store.as_ref(),
            outbox: &self.outbox,
            cause,
        };
        if saga.state == SagaState::Compensating {
            let error = saga.error_message.clone().unwrap_or_default();
            return self.compensate(saga, &env, error, false).await;
        }
        if saga.state == SagaState::Created {
            let started = EventPayload::SagaStarted {
                saga_id: saga.saga_id.clone(),
                saga_name: saga.saga_name.clone(),
                execution_id: execution_id.to_owned(),
                initial_event_id: cause.event_id.clone(),
            };
            saga.state = SagaState::Running;
            let started = self.outbox.caused_by(cause, started);
            if !self.save_with(&mut saga, &[started]).await? {
                return Ok(());
            }
        }
        // Whether the saga as it stands now is stored.
        let mut saved = true;
        for step in steps::STEPS {
            if saga.completed_steps.iter().any(|s| s == step) {
                continue;
            }
            saga.current_step = Some(step.to_owned());
            saved = false;
            tracing::debug!(step, "saga step");
            // Steps are idempotent, so the log is persisted once after them, or with the
            // command of a step that acts outside the store (refused if the saga ended
            // meanwhile).
            let result = match steps::command(step, &mut saga, &env).await {
                None => steps::run(step, &mut saga, &env).await,
                Some(Err(e)) => Err(e),
                Some(Ok(command)) => {
                    saga.completed_steps.push(step.to_owned());
                    match self.save_with(&mut saga, &[command]).await {
                        Ok(true) => {
                            saved = true;
                            continue;
                        }
                        Ok(false) => return self.ended_meanwhile(execution_id).await,
                        Err(e) => {
                            saga.completed_steps.pop();
                            Err(StepError::Store(e))
                        }
                    }
                }
            };
            match result {
                Ok(()) => saga.completed_steps.push(step.to_owned()),
                Err(StepError::Store(e)) if !attempt.last => return Err(e.into()),
                Err(StepError::Store(e)) => {
                    return self.compensate(saga, &env, e.to_string(), false).await
                }
                Err(StepError::Failed(msg)) => {
                    return self.compensate(saga, &env, msg, false).await
                }
                Err(StepError::Aborted(msg)) => {
                    return self.compensate(saga, &env, msg, true).await
                }
            }
        }
        if !saved && !self.save(&mut saga).await? {
            return self.ended_meanwhile(execution_id).await;
        }
        // A cancel that the result processor applied before the run command was sent is not
        // seen again by this group: end the saga now so its allocation is released.
        let cancelled = self
            .store
            .execution(execution_id)
            .await?
            .is_some_and(|e| e.status == ExecutionStatus::Cancelled);
        if cancelled {
            let ending = Ending::Cancelled {
                reason: "cancelled before the run started".to_owned(),
                by: "user".to_owned(),
            };
            return self.end(saga, cause, ending).await;
        }
        Ok(())
    }

    /// Saves the saga together with `events` (one transaction) and publishes them; `false`
    /// when the saga ended meanwhile (nothing is stored then).
    async fn save_with(&self, saga: &mut Saga, events: &[Envelope]) -> Result<bool, StoreError> {
        saga.updated_at = integr8s_core::now();
        match self.store.save_saga_with_events(saga, events).await {
            Ok(stored) => {
                for event in &stored {
                    self.outbox.publish_stored(event).await;
                }
                Ok(true)
            }
            Err(StoreError::Conflict(_)) => {
                tracing::info!(saga_id = %saga.saga_id, "saga ended meanwhile");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The saga was ended by someone else while its steps ran (a saga cancel through the API):
    /// what the steps took is freed, as ending the saga here would have.
    async fn ended_meanwhile(&self, execution_id: &str) -> Result<(), EngineError> {
        self.store.release_allocation(execution_id).await?;
        Ok(())
    }

    /// Compensates the completed steps in reverse, then fails (or, when `aborted`, cancels)
    /// the saga. A failed saga also fails its execution so that its slot is freed.
    async fn compensate(
        &self,
        mut saga: Saga,
        env: &StepEnv<'_>,
        error: String,
        aborted: bool,
    ) -> Result<(), EngineError> {
        let failed_step = saga
            .current_step
            .clone()
            .unwrap_or_else(|| "unknown".to_owned());
        if saga.state != SagaState::Compensating {
            tracing::warn!(step = %failed_step, %error, "saga step failed; compensating");
            saga.state = SagaState::Compensating;
            saga.error_message = Some(error.clone());
            if !self.save(&mut saga).await? {
                return Ok(());
            }
            let compensating = EventPayload::SagaCompensating {
                saga_id: saga.saga_id.clone(),
                saga_name: saga.saga_name.clone(),
                execution_id: saga.execution_id.clone(),
                compensating_step: failed_step.clone(),
            };
            emit_caused_by(&self.outbox, env.cause, compensating).await?;
        }
        for step in saga.completed_steps.clone().iter().rev() {
            let Some(compensation) = steps::compensation_of(step) else {
                continue;
            };
            if saga.compensated_steps.iter().any(|c| c == compensation) {
                continue;
            }
            steps::compensate(step, &saga, env).await?;
            saga.compensated_steps.push(compensation.to_owned());
            if !self.save(&mut saga).await? {
                return Ok(());
            }
        }
        let id = saga.execution_id.clone();
        if aborted {
            let cancelled = EventPayload::SagaCancelled {
                saga_id: saga.saga_id.clone(),
                saga_name: saga.saga_name.clone(),
                execution_id: id,
                reason: error.clone(),
                completed_steps: saga.completed_steps.clone(),
                compensated_steps: saga.compensated_steps.clone(),
                cancelled_at: Some(integr8s_core::now()),
                cancelled_by: Some("system".to_owned()),
            };
            emit_caused_by(&self.outbox, env.cause, cancelled).await?;
            saga.state = SagaState::Cancelled;
        } else {
            let failed = EventPayload::SagaFailed {
                saga_id: saga.saga_id.clone(),
                saga_name: saga.saga_name.clone(),
                execution_id: id.clone(),
                failed_step: failed_step.clone(),
                error: error.clone(),
            };
            emit_caused_by(&self.outbox, env.cause, failed).await?;
            // Emitted before the saga is saved as failed: a crash in between re-emits it
            // (harmless), never loses it.
            let execution_failed = EventPayload::ExecutionFailed {
                execution_id: id,
                exit_code: -1,
                error_type: ErrorType::SystemError,
                error_message: Some(format!("{failed_step} failed: {error}")),
                output: RunOutput::default(),
            };
            emit_caused_by(&self.outbox, env.cause, execution_failed).await?;
            saga.state = SagaState::Failed;
        }
        saga.completed_at = Some(integr8s_core::now());
        self.save(&mut saga).await?;
        Ok(())
    }

    async fn on_outcome(
        &self,
        cause: &Envelope,
        execution_id: &str,
        ending: Ending,
    ) -> Result<(), EngineError> {
        match self.store.saga_for_execution(execution_id).await? {
            Some(saga) if !saga.state.is_terminal() => self.end(saga, cause, ending).await,
            _ => Ok(()),
        }
    }

    /// Ends a live saga because its execution ended; releases the allocation.
    async fn end(
        &self,
        mut saga: Saga,
        cause: &Envelope,
        ending: Ending,
    ) -> Result<(), EngineError> {
        self.store.release_allocation(&saga.execution_id).await?;
        let (state, error, payload) = match ending {
            Ending::Completed => (
                SagaState::Completed,
                None,
                EventPayload::SagaCompleted {
                    saga_id: saga.saga_id.clone(),
                    saga_name: saga.saga_name.clone(),
                    execution_id: saga.execution_id.clone(),
                    completed_steps: saga.completed_steps.clone(),
                },
            ),
            Ending::Failed(error) => (
                SagaState::Failed,
                Some(error.clone()),
                saga_failed(&saga, error),
            ),
            Ending::Timeout(error) => (
                SagaState::Timeout,
                Some(error.clone()),
                saga_failed(&saga, error),
            ),
            Ending::Cancelled { reason, by } => {
                let payload = saga.cancel(reason.clone(), by);
                (SagaState::Cancelled, Some(reason), payload)
            }
        };
        saga.state = state;
        saga.error_message = error;
        saga.current_step = None;
        saga.completed_at = Some(integr8s_core::now());
        // The saga's end and its event are stored together.
        let ended = self.outbox.caused_by(cause, payload);
        self.save_with(&mut saga, &[ended]).await?;
        Ok(())
    }
}

/// `saga_failed` for a saga whose run ended badly (there is no dedicated timeout event).
fn saga_failed(saga: &Saga, error: String) -> EventPayload {
    EventPayload::SagaFailed {
        saga_id: saga.saga_id.clone(),
        saga_name: saga.saga_name.clone(),
        execution_id: saga.execution_id.clone(),
        failed_step: "execution".to_owned(),
        error,
    }
}
