//! Asking for an execution to be cancelled. Exactly one `execution_cancelled` event follows a
//! successful request:
//!
//! - an execution that has not started (`queued`/`scheduled`) is moved to `cancelled` here, by a
//!   compare-and-set that the worker's `scheduled → running` cannot also win, and this emits its
//!   `execution_cancelled` (`force_terminated: false`);
//! - a running execution gets a `delete_pod_command`: the worker stops the run and emits the
//!   `execution_cancelled` itself (`force_terminated: true` when the script had started).

use crate::error::StoreError;
use crate::event::{Envelope, EventPayload};
use crate::execution::ExecutionStatus;
use crate::outbox::Outbox;
use crate::ports::CancelStore;

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The execution had not started and is now `cancelled`; the id is its
    /// `execution_cancelled` event.
    Cancelled {
        event_id: String,
    },
    /// The execution is running; the id is the `delete_pod_command` that stops its run (its
    /// `execution_cancelled` follows once the run is stopped).
    Stopping {
        event_id: String,
    },
    AlreadyCancelled,
    /// It had already ended with this status.
    Ended(ExecutionStatus),
    NotFound,
}

/// Requests the cancel of `execution_id` on behalf of `by` (a user id).
pub async fn request_cancel(
    store: &dyn CancelStore,
    outbox: &Outbox,
    execution_id: &str,
    by: &str,
    reason: &str,
) -> Result<CancelOutcome, StoreError> {
    let not_started = [ExecutionStatus::Queued, ExecutionStatus::Scheduled];
    let metadata = outbox.metadata(Some(by.to_owned()));
    if store
        .transition_execution(execution_id, &not_started, ExecutionStatus::Cancelled)
        .await?
    {
        let payload = EventPayload::ExecutionCancelled {
            execution_id: execution_id.to_owned(),
            cancelled_by: by.to_owned(),
            force_terminated: false,
            reason: Some(reason.to_owned()),
        };
        let stored = outbox
            .emit_envelope(&Envelope::new(payload, metadata))
            .await?;
        return Ok(CancelOutcome::Cancelled {
            event_id: stored.envelope.event_id,
        });
    }
    let Some(execution) = store.execution(execution_id).await? else {
        return Ok(CancelOutcome::NotFound);
    };
    match execution.status {
        ExecutionStatus::Cancelled => return Ok(CancelOutcome::AlreadyCancelled),
        status if status.is_terminal() => return Ok(CancelOutcome::Ended(status)),
        // Statuses only move forward: the compare-and-set failed, so it is running.
        _ => {}
    }
    let saga_id = store
        .saga_for_execution(execution_id)
        .await?
        .map(|s| s.saga_id)
        .unwrap_or_default();
    let payload = EventPayload::DeletePodCommand {
        saga_id,
        execution_id: execution_id.to_owned(),
        reason: reason.to_owned(),
        pod_name: None,
        namespace: None,
    };
    let stored = outbox
        .emit_envelope(&Envelope::new(payload, metadata))
        .await?;
    Ok(CancelOutcome::Stopping {
        event_id: stored.envelope.event_id,
    })
}
