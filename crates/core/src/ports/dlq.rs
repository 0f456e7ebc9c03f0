//! Store port: the dead-letter queue.
//!
//! A consumer group whose handler keeps failing on an event dead-letters it: the event is kept
//! with the group, the error and the attempt count. The DLQ processor retries due messages by
//! asking the group to handle the very same event again (a *redelivery*, picked up by the group's
//! consumer loop), so no copy of the event ever reaches the other groups.
//!
//! Lifecycle: `pending` (just dead-lettered) → `scheduled` (a retry time is set) → `retried`
//! (redelivery requested; terminal once the group handled it) or `discarded` (terminal). A failed
//! redelivery dead-letters the message again: it goes back to `pending` keeping its retry count.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::event::{EventPayload, EventType, StoredEvent};

/// Where a dead-lettered message is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqStatus {
    Pending,
    Scheduled,
    Retried,
    Discarded,
}

impl DlqStatus {
    pub const ALL: [DlqStatus; 4] = [
        DlqStatus::Pending,
        DlqStatus::Scheduled,
        DlqStatus::Retried,
        DlqStatus::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DlqStatus::Pending => "pending",
            DlqStatus::Scheduled => "scheduled",
            DlqStatus::Retried => "retried",
            DlqStatus::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// `retried` and `discarded` end the message's lifecycle (a failed redelivery reopens a
    /// `retried` one).
    pub fn is_terminal(self) -> bool {
        matches!(self, DlqStatus::Retried | DlqStatus::Discarded)
    }
}

/// One dead-lettered event of one consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqMessage {
    pub message_id: String,
    /// The consumer group whose handler failed.
    pub group: String,
    /// The original event, as it was delivered.
    pub event: StoredEvent,
    /// The topic the event was consumed from (its event type's name).
    pub original_topic: String,
    /// The last handler error.
    pub error: String,
    /// Handler attempts of the last failed delivery.
    pub attempts: u32,
    /// Retries requested so far (by the processor or an admin).
    pub retry_count: u32,
    pub status: DlqStatus,
    /// Who dead-lettered it (the service name of the consumer).
    pub producer_id: String,
    /// When the handler failed for the first time on this message.
    pub failed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the next retry is due (`scheduled`).
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_retried_at: Option<DateTime<Utc>>,
    /// When the group handled the redelivered event successfully.
    pub redelivered_at: Option<DateTime<Utc>>,
    pub discarded_at: Option<DateTime<Utc>>,
    pub discard_reason: Option<String>,
}

impl DlqMessage {
    pub fn event_type(&self) -> EventType {
        self.event.envelope.event_type()
    }

    /// The `dlq_message_received` payload announcing this message.
    pub fn received_payload(&self) -> EventPayload {
        EventPayload::DlqMessageReceived {
            dlq_event_id: self.event.envelope.event_id.clone(),
            original_topic: self.original_topic.clone(),
            original_event_type: self.event_type(),
            error: self.error.clone(),
            retry_count: self.retry_count,
            producer_id: self.producer_id.clone(),
            failed_at: self.failed_at,
        }
    }

    /// The `dlq_message_retried` payload; the retry "topic" is the consumer group.
    pub fn retried_payload(&self) -> EventPayload {
        EventPayload::DlqMessageRetried {
            dlq_event_id: self.event.envelope.event_id.clone(),
            original_topic: self.original_topic.clone(),
            original_event_type: self.event_type(),
            retry_count: self.retry_count,
            retry_topic: self.group.clone(),
        }
    }

    /// The `dlq_message_discarded` payload.
    pub fn discarded_payload(&self, reason: &str) -> EventPayload {
        EventPayload::DlqMessageDiscarded {
            dlq_event_id: self.event.envelope.event_id.clone(),
            original_topic: self.original_topic.clone(),
            original_event_type: self.event_type(),
            reason: reason.to_owned(),
            retry_count: self.retry_count,
        }
    }
}

/// A handler failure to dead-letter.
#[derive(Debug, Clone)]
pub struct NewDlqMessage {
    pub group: String,
    pub event: StoredEvent,
    pub error: String,
    pub attempts: u32,
    pub producer_id: String,
    pub failed_at: DateTime<Utc>,
}

/// Which messages to list; `limit` 0 means no limit.
#[derive(Debug, Clone, Default)]
pub struct DlqFilter {
    pub status: Option<DlqStatus>,
    pub event_type: Option<EventType>,
    pub group: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// Counts over the whole queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DlqStats {
    pub total: u64,
    /// (status, count) for every status, in [`DlqStatus::ALL`] order.
    pub by_status: Vec<(DlqStatus, u64)>,
    /// (event type, count), largest first.
    pub by_event_type: Vec<(EventType, u64)>,
    /// (consumer group, count), largest first.
    pub by_group: Vec<(String, u64)>,
    /// Creation time of the oldest message not yet terminal.
    pub oldest_open_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait DlqStore: Send + Sync {
    /// Dead-letters `message.event` for `message.group`. A message for the same (group, event)
    /// is reopened instead: back to `pending` with the new error and attempt count, its retry
    /// count and first failure time kept, and any pending redelivery cancelled. Returns the stored
    /// message.
    async fn dead_letter(&self, message: &NewDlqMessage) -> Result<DlqMessage, StoreError>;

    async fn dlq_message(&self, message_id: &str) -> Result<Option<DlqMessage>, StoreError>;

    /// Messages matching `filter`, newest `created_at` first, with the total before paging.
    async fn list_dlq_messages(
        &self,
        filter: &DlqFilter,
    ) -> Result<(Vec<DlqMessage>, u64), StoreError>;

    /// Moves a `pending` message to `scheduled` with its next retry time. Returns whether it moved.
    async fn schedule_dlq_retry(
        &self,
        message_id: &str,
        next_retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Non-terminal messages due at `now`: `pending` ones (to be scheduled) and `scheduled` ones
    /// whose retry time has come, oldest first, at most `limit`.
    async fn due_dlq_messages(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DlqMessage>, StoreError>;

    /// Requests a redelivery of a non-terminal message to its group: status `retried`, retry
    /// count + 1. Returns the updated message, or `None` when it is unknown or already terminal.
    async fn retry_dlq_message(
        &self,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DlqMessage>, StoreError>;

    /// Discards a non-terminal message with a reason. Returns the updated message, or `None`
    /// when it is unknown or already terminal.
    async fn discard_dlq_message(
        &self,
        message_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DlqMessage>, StoreError>;

    /// Claims up to `limit` requested redeliveries of `group`: messages `retried` and not yet
    /// redelivered whose claim (if any) expired before `now`; each claim lasts until
    /// `claim_until`. A claimed redelivery that is neither completed nor dead-lettered again is
    /// handed out again after its claim expires.
    async fn claim_dlq_redeliveries(
        &self,
        group: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DlqMessage>, StoreError>;

    /// Records that the group handled the redelivered event. Returns whether a claimed
    /// redelivery was completed.
    async fn complete_dlq_redelivery(
        &self,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes messages created before `cutoff` (retention). Returns how many.
    async fn purge_dlq_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn dlq_stats(&self) -> Result<DlqStats, StoreError>;
}
