//! Which stream gets which event: a map from execution id and from user id to the streams that
//! follow it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use integr8s_core::event::{EventPayload, StoredEvent};
use tokio::sync::mpsc::{self, error::TrySendError};

/// What a stream follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// The events of one execution.
    Execution(String),
    /// The notifications of one user.
    User(String),
}

struct Route {
    id: u64,
    tx: mpsc::Sender<StoredEvent>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
pub(super) struct Routes {
    next_id: u64,
    by_key: HashMap<Key, Vec<Route>>,
}

/// The stream key an event concerns, if any stream could want it.
fn key_of(event: &StoredEvent) -> Option<Key> {
    let env = &event.envelope;
    match &env.payload {
        EventPayload::NotificationCreated { user_id, .. } => Some(Key::User(user_id.clone())),
        _ if crate::routes::sse::BRIDGED_TYPES.contains(&env.event_type()) => env
            .execution_id()
            .or(env.aggregate_id.as_deref())
            .map(|id| Key::Execution(id.to_owned())),
        _ => None,
    }
}

impl Routes {
    pub(super) fn add(
        &mut self,
        key: Key,
        tx: mpsc::Sender<StoredEvent>,
        lagged: Arc<AtomicBool>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.by_key
            .entry(key)
            .or_default()
            .push(Route { id, tx, lagged });
        id
    }

    pub(super) fn remove(&mut self, key: &Key, id: u64) {
        if let Some(routes) = self.by_key.get_mut(key) {
            routes.retain(|r| r.id != id);
            if routes.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Hands `event` to every stream that follows its key; a full stream is marked lagged.
    pub(super) fn dispatch(&self, event: &StoredEvent) {
        let Some(key) = key_of(event) else { return };
        let Some(routes) = self.by_key.get(&key) else {
            return;
        };
        for route in routes {
            match route.tx.try_send(event.clone()) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) => route.lagged.store(true, Ordering::Release),
            }
        }
    }
}
