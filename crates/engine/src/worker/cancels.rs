//! How a cancel reaches the worker that owns the run, wherever it is: every worker watches
//! `delete_pod_command` through the bus's live fan-out (no consumer group, so no group per
//! instance), and reads the same events from the store's log every `cancel_poll`, so a
//! fan-out message lost on the way (a lagging watcher, a reconnect) delays a cancel by at most
//! that long. Both paths may see a cancel; stopping a run is idempotent.
//!
//! A cancel for a run that is not live here is remembered (bounded): the run may be handed to
//! this worker later (its command redelivered or scheduled again), and then ends as cancelled
//! without running.

use std::sync::Arc;

use futures::StreamExt;
use integr8s_core::event::{EventPayload, EventType, StoredEvent};
use integr8s_core::ports::replay::is_replayed;
use tokio_util::sync::CancellationToken;

use super::outcome::CancelRequest;
use super::{lock, Inner};

const TOPICS: &[EventType] = &[EventType::DeletePodCommand];
/// Events read from the log per query.
const POLL_BATCH: u32 = 100;

impl Inner {
    /// Stops the live run of `execution_id`, or remembers the cancel.
    fn cancel(&self, execution_id: &str, request: CancelRequest) {
        let mut runs = lock(&self.runs);
        if let Some(run) = runs.live.get(execution_id) {
            tracing::info!(execution_id, "cancelling the live run");
            // Only the first cancel names who asked.
            let _ = run.cancelled_by.set(request);
            run.cancel.cancel();
            return;
        }
        runs.cancelled.insert(execution_id, request);
    }

    fn on_cancel_event(&self, event: &StoredEvent) {
        let env = &event.envelope;
        if is_replayed(env) {
            return;
        }
        if let (EventPayload::DeletePodCommand { execution_id, .. }, Some(request)) =
            (&env.payload, CancelRequest::from_command(env))
        {
            self.cancel(execution_id, request);
        }
    }

    /// Follows the bus's fan-out of cancels until `stop`, watching again when it ends.
    pub(super) async fn watch_cancels(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.bus.watch(TOPICS).await {
                Ok(mut events) => loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        next = events.next() => match next {
                            Some(event) => self.on_cancel_event(&event),
                            None => break,
                        },
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch cancels; the store poll covers them")
                }
            }
            // Watched again after a pause; the poll covers what goes by meanwhile.
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.worker.cancel_poll) => {}
            }
        }
    }

    /// Reads the cancels stored after `cursor` every `cancel_poll` until `stop`.
    pub(super) async fn poll_cancels(self: Arc<Self>, mut cursor: i64, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.worker.cancel_poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = interval.tick() => {}
            }
            loop {
                let events = match self.store.events_after(TOPICS, cursor, POLL_BATCH).await {
                    Ok(events) => events,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read cancels from the store");
                        break;
                    }
                };
                for event in &events {
                    cursor = cursor.max(event.seq);
                    self.on_cancel_event(event);
                }
                if events.len() < POLL_BATCH as usize {
                    break;
                }
            }
        }
    }
}
