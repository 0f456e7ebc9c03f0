//! The result processor: stores each execution's outcome once, frees its queue slot and
//! allocation, and announces `result_stored` exactly once per execution that ran to an outcome
//! (which also lets the coordinator fill the slot; a cancelled one gets none, its slot is filled
//! on the coordinator's tick).

use std::sync::Arc;

use async_trait::async_trait;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunOutput, StoredEvent};
use integr8s_core::execution::{ErrorType, ExecutionResultRecord, ExecutionStatus, NO_EXIT_CODE};
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, ResultProcessorStore};
use integr8s_telemetry::catalogue;
use integr8s_telemetry::metrics::{counter, histogram};
use tokio_util::sync::CancellationToken;

use crate::config::EngineConfig;
use crate::consumer::{consume_with_dlq, emit_caused_by, Attempt, Handler};
use crate::error::EngineError;
use crate::groups;

const TOPICS: &[EventType] = &[
    EventType::ExecutionCompleted,
    EventType::ExecutionFailed,
    EventType::ExecutionTimeout,
    EventType::ExecutionCancelled,
];

const STORAGE_TYPE: &str = "database";

/// Writes run outcomes (a cancel included) to the store.
pub struct ResultProcessor {
    bus: Arc<dyn EventBus>,
    inner: Inner,
}

struct Inner {
    store: Arc<dyn ResultProcessorStore>,
    outbox: Outbox,
    config: EngineConfig,
}

impl ResultProcessor {
    pub fn new(
        store: Arc<dyn ResultProcessorStore>,
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

    /// Consumes run outcomes until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EngineError> {
        consume_with_dlq(
            self.inner.store.as_ref(),
            self.bus.as_ref(),
            TOPICS,
            groups::RESULT_PROCESSOR,
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
        let Some(execution_id) = env.execution_id() else {
            return Ok(());
        };
        let result = match result_record(&env.payload) {
            Some(record) => self.finish(env, execution_id, &record).await,
            None => Ok(()),
        };
        if let (Err(e), true) = (&result, attempt.last) {
            self.give_up(env, execution_id, e).await;
        }
        result
    }
}

impl Inner {
    /// Stores the outcome unless the execution already ended (an execution cancelled before
    /// its run already reads `cancelled`); the same store transaction frees its queue slot and
    /// allocation. A cancel gets no `result_stored`, as in the original: its
    /// `execution_cancelled` is the last event of the execution's pipeline.
    async fn finish(
        &self,
        cause: &Envelope,
        execution_id: &str,
        record: &ExecutionResultRecord,
    ) -> Result<(), EngineError> {
        let size = record.stdout.len() + record.stderr.len();
        // `result_stored` is stored with the result it announces (a cancel gets none).
        let announce: Vec<Envelope> = if record.status == ExecutionStatus::Cancelled {
            Vec::new()
        } else {
            vec![self
                .outbox
                .caused_by(cause, result_stored(execution_id, size))]
        };
        let written = self
            .store
            .finish_execution_with_events(execution_id, record, &announce)
            .await?;
        let wrote = written.is_some();
        if let Some(stored) = written {
            record_outcome(record);
            for event in &stored {
                self.outbox.publish_stored(event).await;
            }
        }
        tracing::info!(status = record.status.as_str(), wrote, "outcome processed");
        if wrote || record.status == ExecutionStatus::Cancelled {
            return Ok(());
        }
        self.announce(cause, execution_id, size).await
    }

    async fn release(&self, execution_id: &str) -> Result<(), EngineError> {
        self.store.release(execution_id).await?;
        self.store.release_allocation(execution_id).await?;
        Ok(())
    }

    /// Emits `result_stored` for a result an earlier delivery (or another writer) stored
    /// without announcing it, e.g. a result written by `finish_execution` alone.
    async fn announce(
        &self,
        cause: &Envelope,
        execution_id: &str,
        size: usize,
    ) -> Result<(), EngineError> {
        if self.store.execution(execution_id).await?.is_none() {
            return Ok(());
        }
        let stored = self
            .store
            .events_for_aggregate(execution_id, &[EventType::ResultStored], 1)
            .await?;
        if !stored.is_empty() {
            return Ok(());
        }
        emit_caused_by(&self.outbox, cause, result_stored(execution_id, size)).await?;
        Ok(())
    }

    /// The outcome could not be stored: free the slot if possible and say so.
    async fn give_up(&self, cause: &Envelope, execution_id: &str, error: &EngineError) {
        if let Err(e) = self.release(execution_id).await {
            tracing::error!(error = %e, "could not release the slot of an unstored result");
        }
        let payload = EventPayload::ResultFailed {
            execution_id: execution_id.to_owned(),
            storage_type: Some(STORAGE_TYPE.to_owned()),
            error: Some(error.to_string()),
        };
        if let Err(e) = emit_caused_by(&self.outbox, cause, payload).await {
            tracing::error!(error = %e, "could not announce the unstored result");
        }
    }
}

fn result_stored(execution_id: &str, size: usize) -> EventPayload {
    EventPayload::ResultStored {
        execution_id: execution_id.to_owned(),
        storage_type: Some(STORAGE_TYPE.to_owned()),
        storage_path: execution_id.to_owned(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
    }
}

/// Counts a stored outcome (once per execution: only the write that ended it counts).
fn record_outcome(record: &ExecutionResultRecord) {
    counter!(catalogue::SCRIPT_EXECUTIONS_TOTAL, "status" => record.status.as_str()).increment(1);
    if let Some(error_type) = record.error_type {
        counter!(catalogue::SCRIPT_ERRORS_TOTAL, "error_type" => error_type.as_str()).increment(1);
    }
    if let Some(usage) = &record.resource_usage {
        histogram!(catalogue::SCRIPT_EXECUTION_DURATION_SECONDS)
            .record(usage.execution_time_wall_seconds);
        histogram!(catalogue::SCRIPT_MEMORY_USAGE_BYTES)
            .record(usage.peak_memory_kb.max(0) as f64 * 1024.0);
    }
}

/// The stored result of an outcome event (docs/pipeline.md, "Outcome mapping").
fn result_record(payload: &EventPayload) -> Option<ExecutionResultRecord> {
    let record = |status, output: &RunOutput| ExecutionResultRecord {
        status,
        stdout: output.stdout.clone(),
        stderr: output.stderr.clone(),
        exit_code: None,
        error_type: None,
        error_message: None,
        resource_usage: output.resource_usage,
    };
    Some(match payload {
        EventPayload::ExecutionCompleted {
            exit_code, output, ..
        } => ExecutionResultRecord {
            exit_code: Some(*exit_code),
            error_type: (*exit_code != 0).then_some(ErrorType::ScriptError),
            ..record(ExecutionStatus::Completed, output)
        },
        EventPayload::ExecutionFailed {
            exit_code,
            error_type,
            error_message,
            output,
            ..
        } => {
            let status = if *error_type == ErrorType::SystemError {
                ExecutionStatus::Error
            } else {
                ExecutionStatus::Failed
            };
            ExecutionResultRecord {
                exit_code: Some(*exit_code),
                error_type: Some(*error_type),
                error_message: error_message.clone(),
                ..record(status, output)
            }
        }
        EventPayload::ExecutionTimeout {
            timeout_seconds,
            output,
            ..
        } => ExecutionResultRecord {
            exit_code: Some(NO_EXIT_CODE),
            error_type: Some(ErrorType::Timeout),
            error_message: Some(format!("execution timed out after {timeout_seconds} s")),
            ..record(ExecutionStatus::Timeout, output)
        },
        EventPayload::ExecutionCancelled {
            cancelled_by,
            reason,
            ..
        } => ExecutionResultRecord {
            exit_code: Some(NO_EXIT_CODE),
            error_message: Some(
                reason
                    .clone()
                    .unwrap_or_else(|| format!("cancelled by {cancelled_by}")),
            ),
            ..record(ExecutionStatus::Cancelled, &RunOutput::default())
        },
        _ => return None,
    })
}
