//! Store port: The dead-letter queue.

use async_trait::async_trait;

#[async_trait]
pub trait DlqStore: Send + Sync {}
