//! What the event store holds for an execution's pod: the monitor's deduplication.

use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::ports::PodMonitorStore;
use integr8s_engine::run_outcome::CancelRequest;

use crate::error::K8sError;

const OUTCOMES: &[EventType] = &[
    EventType::ExecutionCompleted,
    EventType::ExecutionFailed,
    EventType::ExecutionTimeout,
    EventType::ExecutionCancelled,
];

/// The steps of an execution's pod already reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Known {
    /// The worker committed the pod's creation (`pod_created`); nothing is reported before.
    pub created: bool,
    pub scheduled: bool,
    pub running: bool,
    pub ended: bool,
    pub deleted: bool,
}

impl Known {
    pub async fn load(store: &dyn PodMonitorStore, execution_id: &str) -> Result<Self, K8sError> {
        let types = [
            EventType::PodCreated,
            EventType::PodScheduled,
            EventType::PodRunning,
            EventType::PodDeleted,
            EventType::ExecutionCompleted,
            EventType::ExecutionFailed,
            EventType::ExecutionTimeout,
            EventType::ExecutionCancelled,
        ];
        let events = store
            .events_for_aggregate(execution_id, &types, 100)
            .await?;
        let mut known = Known::default();
        for event in events {
            match event.envelope.event_type() {
                EventType::PodCreated => known.created = true,
                EventType::PodScheduled => known.scheduled = true,
                EventType::PodRunning => known.running = true,
                EventType::PodDeleted => known.deleted = true,
                _ => known.ended = true,
            }
        }
        Ok(known)
    }

    /// Whether any run outcome is stored (by this monitor, a worker, the saga, a recovery).
    pub async fn outcome_stored(
        store: &dyn PodMonitorStore,
        execution_id: &str,
    ) -> Result<bool, K8sError> {
        Ok(!store
            .events_for_aggregate(execution_id, OUTCOMES, 1)
            .await?
            .is_empty())
    }

    /// The cancel asked for the execution (its `delete_pod_command`), if any.
    pub async fn cancel_request(
        store: &dyn PodMonitorStore,
        execution_id: &str,
    ) -> Result<Option<CancelRequest>, K8sError> {
        let events = store
            .events_for_aggregate(execution_id, &[EventType::DeletePodCommand], 1)
            .await?;
        Ok(events.into_iter().find_map(|e| match e.envelope.payload {
            EventPayload::DeletePodCommand { reason, .. } => Some(CancelRequest {
                by: e
                    .envelope
                    .metadata
                    .user_id
                    .clone()
                    .unwrap_or_else(|| "system".to_owned()),
                reason: Some(reason),
            }),
            _ => None,
        }))
    }
}
