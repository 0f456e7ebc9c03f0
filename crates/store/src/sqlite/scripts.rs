//! SQLite: saved scripts.

use async_trait::async_trait;
use integr8s_core::ports::ScriptStore;

use super::SqliteStore;

#[async_trait]
impl ScriptStore for SqliteStore {}
