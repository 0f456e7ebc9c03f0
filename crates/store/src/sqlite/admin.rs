//! SQLite: admin views: system settings and audit log, user administration, event queries.

use async_trait::async_trait;
use integr8s_core::ports::{EventQueryStore, SystemSettingsStore, UserAdminStore};

use super::SqliteStore;

#[async_trait]
impl SystemSettingsStore for SqliteStore {}

#[async_trait]
impl UserAdminStore for SqliteStore {}

#[async_trait]
impl EventQueryStore for SqliteStore {}
