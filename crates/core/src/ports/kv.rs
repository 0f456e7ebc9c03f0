//! Short-lived keys: login lockout counters and similar. In memory for one process, or in Redis
//! shared by several. Conformance suite: `key_value_test_suite!`.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;

#[async_trait]
pub trait KeyValue: Send + Sync {
    /// Increments a counter, creating it with `ttl` when absent; returns the new value.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError>;
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}
