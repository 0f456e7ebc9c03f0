//! The JSON bodies of the dead-letter queue API (an integr8s extension: the reference contract
//! has no DLQ routes, so these schemas are ours).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use integr8s_core::event::{Envelope, EventMetadata, EventType};
use integr8s_core::ports::dlq::{DlqMessage, DlqStats, DlqStatus};
use serde::{Deserialize, Serialize};

/// How a dead-lettered event is documented: the envelope fields every event has; the fields of
/// its `event_type`'s payload follow at the same level.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct EventDocument {
    event_id: String,
    event_type: EventType,
    event_version: String,
    timestamp: DateTime<Utc>,
    aggregate_id: Option<String>,
    metadata: EventMetadata,
}

/// One dead-lettered event of one consumer group.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqMessageResponse {
    pub message_id: String,
    /// The consumer group whose handler failed.
    pub group: String,
    pub event_id: String,
    pub event_type: EventType,
    pub original_topic: String,
    /// The last handler error.
    pub error: String,
    /// Handler attempts of the last failed delivery.
    pub attempts: u32,
    /// Retries requested so far (by the processor or an admin).
    pub retry_count: u32,
    pub status: DlqStatus,
    pub producer_id: String,
    pub failed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_retried_at: Option<DateTime<Utc>>,
    pub redelivered_at: Option<DateTime<Utc>>,
    pub discarded_at: Option<DateTime<Utc>>,
    pub discard_reason: Option<String>,
    /// The original event, as it was delivered.
    #[schemars(with = "EventDocument")]
    pub event: Envelope,
}

impl From<&DlqMessage> for DlqMessageResponse {
    fn from(m: &DlqMessage) -> Self {
        Self {
            message_id: m.message_id.clone(),
            group: m.group.clone(),
            event_id: m.event.envelope.event_id.clone(),
            event_type: m.event_type(),
            original_topic: m.original_topic.clone(),
            error: m.error.clone(),
            attempts: m.attempts,
            retry_count: m.retry_count,
            status: m.status,
            producer_id: m.producer_id.clone(),
            failed_at: m.failed_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            next_retry_at: m.next_retry_at,
            last_retried_at: m.last_retried_at,
            redelivered_at: m.redelivered_at,
            discarded_at: m.discarded_at,
            discard_reason: m.discard_reason.clone(),
            event: m.event.envelope.clone(),
        }
    }
}

/// A page of DLQ messages.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqMessageListResponse {
    pub messages: Vec<DlqMessageResponse>,
    /// Messages matching the filter, over all pages.
    pub total: u64,
    pub limit: i64,
    pub offset: i64,
}

/// The answer to a retry: the consumer group will handle the event again.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqRetryResponse {
    pub message_id: String,
    pub status: DlqStatus,
    pub retry_count: u32,
    pub message: String,
}

/// The optional body of a discard.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct DlqDiscardRequest {
    /// Why the message is discarded (default: "Discarded by admin <username>").
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer to a discard.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqDiscardResponse {
    pub message_id: String,
    pub status: DlqStatus,
    pub reason: String,
    pub message: String,
}

/// How many messages have one event type.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqEventTypeCount {
    pub event_type: EventType,
    pub count: u64,
}

/// How many messages one consumer group dead-lettered.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqGroupCount {
    pub group: String,
    pub count: u64,
}

/// Counts over the whole queue.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DlqStatsResponse {
    pub total: u64,
    /// Messages per status (every status is listed).
    pub by_status: BTreeMap<String, u64>,
    /// Largest first.
    pub by_event_type: Vec<DlqEventTypeCount>,
    /// Largest first.
    pub by_group: Vec<DlqGroupCount>,
    /// Creation time of the oldest message not yet retried or discarded.
    pub oldest_open_at: Option<DateTime<Utc>>,
    pub oldest_open_age_seconds: Option<f64>,
}

impl DlqStatsResponse {
    /// The stats as of `now`.
    pub fn new(s: DlqStats, now: DateTime<Utc>) -> Self {
        Self {
            total: s.total,
            by_status: s
                .by_status
                .iter()
                .map(|(status, n)| (status.as_str().to_owned(), *n))
                .collect(),
            by_event_type: s
                .by_event_type
                .into_iter()
                .map(|(event_type, count)| DlqEventTypeCount { event_type, count })
                .collect(),
            by_group: s
                .by_group
                .into_iter()
                .map(|(group, count)| DlqGroupCount { group, count })
                .collect(),
            oldest_open_at: s.oldest_open_at,
            oldest_open_age_seconds: s
                .oldest_open_at
                .map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
        }
    }
}
