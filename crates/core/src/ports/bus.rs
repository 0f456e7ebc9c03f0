//! The event bus port: publish stored events, consume them by consumer group with
//! acknowledgement, or watch them live (fan-out).
//!
//! Delivery is at least once: an event is redelivered until a consumer of the group acks it,
//! including after a restart. Handlers must therefore be idempotent.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::BusError;
use crate::event::{EventType, StoredEvent};

/// Settles one delivery. Implemented by each adapter.
pub trait Acker: Send {
    fn ack(self: Box<Self>);
    /// The event is redelivered to the group later.
    fn nack(self: Box<Self>);
}

/// One event handed to one consumer of a group. Dropping it unsettled counts as `nack`.
pub struct Delivery {
    pub event: StoredEvent,
    /// 1 on first delivery, +1 per redelivery within this process.
    pub attempt: u32,
    acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    pub fn new(event: StoredEvent, attempt: u32, acker: Box<dyn Acker>) -> Self {
        Self {
            event,
            attempt,
            acker: Some(acker),
        }
    }

    /// Marks the event handled by this group; it is not delivered to the group again.
    pub fn ack(mut self) {
        if let Some(a) = self.acker.take() {
            a.ack();
        }
    }

    /// Hands the event back for redelivery.
    pub fn nack(mut self) {
        if let Some(a) = self.acker.take() {
            a.nack();
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(a) = self.acker.take() {
            a.nack();
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// One topic per event type; the partition key is the aggregate id, so one execution's events
/// keep their order within a group.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event that the caller has already appended to the event store (outbox:
    /// store, then publish). Publishing the same event twice is harmless.
    async fn publish(&self, event: &StoredEvent) -> Result<(), BusError>;

    /// Consumes `topics` as a member of `group`: each event is delivered to one member of the
    /// group, starting after the group's committed position, and redelivered until acked.
    async fn subscribe(
        &self,
        topics: &[EventType],
        group: &str,
    ) -> Result<BoxStream<'static, Delivery>, BusError>;

    /// Every event of `topics` published from now on, to every watcher; no acks, no replay.
    async fn watch(
        &self,
        topics: &[EventType],
    ) -> Result<BoxStream<'static, StoredEvent>, BusError>;
}
