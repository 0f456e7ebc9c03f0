//! Store port: Replay sessions.

use async_trait::async_trait;

#[async_trait]
pub trait ReplayStore: Send + Sync {}
