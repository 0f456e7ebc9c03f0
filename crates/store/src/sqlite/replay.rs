//! SQLite: replay sessions.

use async_trait::async_trait;
use integr8s_core::ports::ReplayStore;

use super::SqliteStore;

#[async_trait]
impl ReplayStore for SqliteStore {}
