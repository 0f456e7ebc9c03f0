//! SQLite: per-user rate-limit overrides.

use async_trait::async_trait;
use integr8s_core::ports::RateLimitStore;

use super::SqliteStore;

#[async_trait]
impl RateLimitStore for SqliteStore {}
