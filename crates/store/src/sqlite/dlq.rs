//! SQLite: the dead-letter queue.

use async_trait::async_trait;
use integr8s_core::ports::DlqStore;

use super::SqliteStore;

#[async_trait]
impl DlqStore for SqliteStore {}
