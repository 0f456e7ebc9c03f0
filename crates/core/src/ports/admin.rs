//! Store port: Admin views: system settings and audit log, user administration, event queries.

use async_trait::async_trait;

#[async_trait]
pub trait SystemSettingsStore: Send + Sync {}

#[async_trait]
pub trait UserAdminStore: Send + Sync {}

#[async_trait]
pub trait EventQueryStore: Send + Sync {}
