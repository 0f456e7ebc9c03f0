//! Positions of consumer groups: state of the bus adapters, not of the event log. The
//! store-backed bus keeps each group's position per topic here, and the Kafka bus's outbox relay
//! its position in the log; they live in the database the processes share so that they survive
//! restarts and are shared by every process of a group.

use async_trait::async_trait;

use crate::event::EventType;
use crate::StoreError;

#[async_trait]
pub trait ConsumerOffsetStore: Send + Sync {
    /// A consumer group's committed position for one topic (0 when never committed).
    async fn consumer_offset(&self, group: &str, topic: EventType) -> Result<i64, StoreError>;
    /// Commits a consumer group's position; never moves it backwards.
    async fn commit_offset(
        &self,
        group: &str,
        topic: EventType,
        seq: i64,
    ) -> Result<(), StoreError>;
}
