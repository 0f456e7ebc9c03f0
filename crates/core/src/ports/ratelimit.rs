//! Store port: Per-user rate-limit overrides.

use async_trait::async_trait;

#[async_trait]
pub trait RateLimitStore: Send + Sync {}
