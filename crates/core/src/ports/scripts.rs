//! Store port: Saved scripts.

use async_trait::async_trait;

#[async_trait]
pub trait ScriptStore: Send + Sync {}
