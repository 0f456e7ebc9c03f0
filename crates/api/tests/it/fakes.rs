//! Stand-ins for the in-process bus and key/value store, used until those adapters land.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use integr8s_core::error::BusError;
use integr8s_core::event::{EventType, StoredEvent};
use integr8s_core::ports::{Delivery, EventBus, KeyValue};
use integr8s_core::StoreError;
use tokio::sync::broadcast;

pub struct FanoutBus {
    tx: broadcast::Sender<StoredEvent>,
}

impl FanoutBus {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

#[async_trait]
impl EventBus for FanoutBus {
    async fn publish(&self, event: &StoredEvent) -> Result<(), BusError> {
        let _ = self.tx.send(event.clone());
        Ok(())
    }

    async fn subscribe(
        &self,
        _topics: &[EventType],
        _group: &str,
    ) -> Result<BoxStream<'static, Delivery>, BusError> {
        Err(BusError::Unavailable(
            "not supported by the test bus".into(),
        ))
    }

    async fn watch(
        &self,
        topics: &[EventType],
    ) -> Result<BoxStream<'static, StoredEvent>, BusError> {
        let topics = topics.to_vec();
        let rx = self.tx.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |e| futures::future::ready(topics.contains(&e.envelope.event_type())));
        Ok(stream.boxed())
    }
}

#[derive(Default)]
pub struct MapKeyValue {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl MapKeyValue {
    fn live(&self, key: &str) -> Option<String> {
        let mut map = self.entries.lock().unwrap();
        match map.get(key) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl KeyValue for MapKeyValue {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let current = self.live(key).and_then(|v| v.parse::<u64>().ok());
        let mut map = self.entries.lock().unwrap();
        let next = current.unwrap_or(0) + 1;
        let until = match (current, map.get(key)) {
            (Some(_), Some((_, until))) => *until,
            _ => Instant::now() + ttl,
        };
        map.insert(key.to_owned(), (next.to_string(), until));
        Ok(next)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.live(key))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries.lock().unwrap().remove(key);
        Ok(())
    }
}
