//! Store port: Saved scripts, private to their owner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A script a user saved (the contract's `SavedScriptResponse` plus its owner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedScript {
    pub script_id: String,
    pub user_id: String,
    pub name: String,
    pub script: String,
    pub lang: String,
    pub lang_version: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait ScriptStore: Send + Sync {
    /// Stores a new script. `Conflict` if the id is taken.
    async fn create_script(&self, script: &SavedScript) -> Result<(), StoreError>;
    /// The script with this id if `user_id` owns it (another user's script is `None`).
    async fn script(
        &self,
        script_id: &str,
        user_id: &str,
    ) -> Result<Option<SavedScript>, StoreError>;
    /// The user's scripts, most recently updated first.
    async fn list_scripts(&self, user_id: &str) -> Result<Vec<SavedScript>, StoreError>;
    /// One page of the user's scripts in the order of [`ScriptStore::list_scripts`].
    async fn list_scripts_page(
        &self,
        user_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<SavedScript>, StoreError>;
    /// How many scripts the user has.
    async fn count_scripts(&self, user_id: &str) -> Result<u64, StoreError>;
    /// Overwrites name, script, lang, lang_version, description and updated_at of a script
    /// owned by `script.user_id`. Returns whether such a script existed.
    async fn update_script(&self, script: &SavedScript) -> Result<bool, StoreError>;
    /// Deletes the script if `user_id` owns it. Returns whether it was deleted.
    async fn delete_script(&self, script_id: &str, user_id: &str) -> Result<bool, StoreError>;
}
