//! Event-sourced user settings: the settings document, the changes a `user_settings_updated`
//! event carries, and the fold that rebuilds the document from a snapshot plus later events.
//!
//! A change names its target with a JSON pointer into the document (`/theme`,
//! `/custom_settings/<key>`) and carries both the old and the new value, so replaying the events
//! in log order gives the same document in every process, and history can show what changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::event::{EventPayload, StoredEvent};
use crate::ports::UserSettingsStore;

/// A snapshot is stored after at least this many events were replayed on top of the last one.
pub const SNAPSHOT_EVERY: usize = 10;

/// The document's top-level fields that a user may change, in display order.
pub const FIELDS: [&str; 7] = [
    "theme",
    "timezone",
    "date_format",
    "time_format",
    "notifications",
    "editor",
    "custom_settings",
];

/// The UI theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    Auto,
}

/// Which notifications the user wants and on which channels (`in_app`, `webhook`, `slack`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct NotificationSettings {
    pub execution_completed: bool,
    pub execution_failed: bool,
    pub system_updates: bool,
    pub security_alerts: bool,
    pub channels: Vec<String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            execution_completed: true,
            execution_failed: true,
            system_updates: true,
            security_alerts: true,
            channels: vec!["in_app".to_owned()],
        }
    }
}

/// Code editor preferences (`font_size` 8..=32, `tab_size` one of 2, 4, 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct EditorSettings {
    pub font_size: i64,
    pub tab_size: i64,
    pub use_tabs: bool,
    pub word_wrap: bool,
    pub show_line_numbers: bool,
}

impl Default for EditorSettings {
    fn default() -> Self {
        Self {
            font_size: 14,
            tab_size: 4,
            use_tabs: false,
            word_wrap: true,
            show_line_numbers: true,
        }
    }
}

/// The whole settings document of one user (the contract's `UserSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct UserSettings {
    pub user_id: String,
    pub theme: Theme,
    pub timezone: String,
    pub date_format: String,
    pub time_format: String,
    pub notifications: NotificationSettings,
    pub editor: EditorSettings,
    pub custom_settings: Map<String, Value>,
    /// 1 for the defaults, plus one per applied event.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserSettings {
    /// The defaults of a user who never changed anything.
    pub fn defaults(user_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            user_id: user_id.to_owned(),
            theme: Theme::Auto,
            timezone: "UTC".to_owned(),
            date_format: "YYYY-MM-DD".to_owned(),
            time_format: "24h".to_owned(),
            notifications: NotificationSettings::default(),
            editor: EditorSettings::default(),
            custom_settings: Map::new(),
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    /// The value of a top-level field (one of [`FIELDS`]), `Null` for unknown names.
    pub fn field(&self, name: &str) -> Value {
        let value = match name {
            "theme" => serde_json::to_value(self.theme),
            "timezone" => Ok(Value::from(self.timezone.clone())),
            "date_format" => Ok(Value::from(self.date_format.clone())),
            "time_format" => Ok(Value::from(self.time_format.clone())),
            "notifications" => serde_json::to_value(&self.notifications),
            "editor" => serde_json::to_value(&self.editor),
            "custom_settings" => Ok(Value::Object(self.custom_settings.clone())),
            _ => Ok(Value::Null),
        };
        value.unwrap_or(Value::Null)
    }

    /// The changes that turn this document's fields into `target`'s (top-level fields only;
    /// empty when they are equal).
    pub fn diff(&self, target: &UserSettings) -> Vec<SettingChange> {
        FIELDS
            .iter()
            .filter_map(|name| {
                let old_value = self.field(name);
                let new_value = target.field(name);
                (old_value != new_value).then(|| SettingChange {
                    field: format!("/{name}"),
                    old_value,
                    new_value,
                })
            })
            .collect()
    }

    /// The change setting one top-level field (`None` when the value is already there).
    pub fn change_field(&self, name: &str, new_value: Value) -> Option<SettingChange> {
        let old_value = self.field(name);
        (old_value != new_value).then(|| SettingChange {
            field: format!("/{name}"),
            old_value,
            new_value,
        })
    }

    /// The change setting one custom key (`None` when the value is already there).
    pub fn change_custom(&self, key: &str, new_value: Value) -> Option<SettingChange> {
        let old_value = self
            .custom_settings
            .get(key)
            .cloned()
            .unwrap_or(Value::Null);
        (old_value != new_value).then(|| SettingChange {
            field: format!("/custom_settings/{}", escape_pointer(key)),
            old_value,
            new_value,
        })
    }

    /// Applies the changes of one event made at `at`: every change sets its target to its new
    /// value, the version goes up by one. A change that does not fit the document (corrupt
    /// data) is skipped with a warning, so one bad event cannot make settings unreadable.
    pub fn apply(&mut self, changes: &[SettingChange], at: DateTime<Utc>) {
        for change in changes {
            if let Err(reason) = self.apply_one(change) {
                tracing::warn!(user_id = %self.user_id, field = %change.field, %reason, "skipping a settings change");
            }
        }
        self.version += 1;
        self.updated_at = at;
    }

    fn apply_one(&mut self, change: &SettingChange) -> Result<(), String> {
        let mut parts = change
            .field
            .strip_prefix('/')
            .ok_or("not a JSON pointer")?
            .splitn(2, '/');
        let top = parts.next().unwrap_or_default();
        if let Some(key) = parts.next() {
            if top != "custom_settings" {
                return Err("only custom settings have sub-keys".to_owned());
            }
            let key = unescape_pointer(key);
            if change.new_value.is_null() {
                self.custom_settings.remove(&key);
            } else {
                self.custom_settings.insert(key, change.new_value.clone());
            }
            return Ok(());
        }
        let value = change.new_value.clone();
        let bad = |e: serde_json::Error| e.to_string();
        match top {
            "theme" => self.theme = serde_json::from_value(value).map_err(bad)?,
            "timezone" => self.timezone = serde_json::from_value(value).map_err(bad)?,
            "date_format" => self.date_format = serde_json::from_value(value).map_err(bad)?,
            "time_format" => self.time_format = serde_json::from_value(value).map_err(bad)?,
            "notifications" => self.notifications = serde_json::from_value(value).map_err(bad)?,
            "editor" => self.editor = serde_json::from_value(value).map_err(bad)?,
            "custom_settings" => {
                self.custom_settings = serde_json::from_value(value).map_err(bad)?
            }
            other => return Err(format!("unknown field {other:?}")),
        }
        Ok(())
    }

    /// Applies a stored `user_settings_updated` event; other events are ignored.
    pub fn apply_event(&mut self, event: &StoredEvent) {
        if let EventPayload::UserSettingsUpdated { changes, .. } = &event.envelope.payload {
            self.apply(changes, event.envelope.timestamp);
        }
    }
}

/// One changed value inside a `user_settings_updated` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SettingChange {
    /// JSON pointer into the document: `/theme`, `/editor`, `/custom_settings/<key>`.
    pub field: String,
    pub old_value: Value,
    pub new_value: Value,
}

impl SettingChange {
    /// The top-level field this change touches (`theme`, `custom_settings`…).
    pub fn top_field(&self) -> &str {
        let path = self.field.strip_prefix('/').unwrap_or(&self.field);
        path.split('/').next().unwrap_or(path)
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape_pointer(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}

/// A stored state of a user's settings: the document after applying every settings event up to
/// and including `last_seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsSnapshot {
    pub settings: UserSettings,
    /// The log position of the last event folded into `settings` (0: none).
    pub last_seq: i64,
}

/// The current settings of `user_id`: the stored snapshot (or the defaults, stored as the first
/// snapshot so `created_at` stays put) plus every later event. Stores a new snapshot when at
/// least [`SNAPSHOT_EVERY`] events were replayed. Every process computes the same document.
pub async fn current_settings(
    store: &dyn UserSettingsStore,
    user_id: &str,
) -> Result<UserSettings, StoreError> {
    let snapshot = match store.settings_snapshot(user_id).await? {
        Some(snapshot) => snapshot,
        None => {
            let first = SettingsSnapshot {
                settings: UserSettings::defaults(user_id, crate::now()),
                last_seq: 0,
            };
            store.save_settings_snapshot(&first).await?;
            // Another process may have stored its own first snapshot meanwhile.
            store.settings_snapshot(user_id).await?.unwrap_or(first)
        }
    };
    let events = store
        .settings_events(user_id, snapshot.last_seq, None)
        .await?;
    let mut settings = snapshot.settings;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(settings);
    };
    for event in &events {
        settings.apply_event(event);
    }
    if events.len() >= SNAPSHOT_EVERY {
        let snapshot = SettingsSnapshot {
            settings: settings.clone(),
            last_seq: last,
        };
        if let Err(e) = store.save_settings_snapshot(&snapshot).await {
            tracing::warn!(%user_id, error = %e, "could not store a settings snapshot");
        }
    }
    Ok(settings)
}

/// The settings of `user_id` as they were at `at`: the defaults plus every settings event with a
/// timestamp up to `at`, in log order.
pub async fn settings_at(
    store: &dyn UserSettingsStore,
    user_id: &str,
    at: DateTime<Utc>,
) -> Result<UserSettings, StoreError> {
    let created_at = store
        .settings_snapshot(user_id)
        .await?
        .map(|s| s.settings.created_at)
        .unwrap_or_else(crate::now);
    let mut settings = UserSettings::defaults(user_id, created_at);
    for event in store.settings_events(user_id, 0, Some(at)).await? {
        settings.apply_event(&event);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_replay_to_the_same_document() {
        let at = crate::now();
        let base = UserSettings::defaults("u1", at);
        let mut edited = base.clone();
        edited.theme = Theme::Dark;
        edited.editor.font_size = 20;
        let changes = base.diff(&edited);
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["/theme", "/editor"]);
        assert_eq!(changes[0].old_value, json!("auto"));
        assert_eq!(changes[0].new_value, json!("dark"));

        let mut replayed = base;
        replayed.apply(&changes, at);
        assert_eq!(replayed.theme, Theme::Dark);
        assert_eq!(replayed.editor.font_size, 20);
        assert_eq!(replayed.version, 2);
    }

    #[test]
    fn custom_keys_are_escaped_pointers() {
        let at = crate::now();
        let mut s = UserSettings::defaults("u1", at);
        let change = s.change_custom("a/b~c", json!({"x": 1})).unwrap();
        assert_eq!(change.field, "/custom_settings/a~1b~0c");
        assert_eq!(change.top_field(), "custom_settings");
        s.apply(&[change], at);
        assert_eq!(s.custom_settings["a/b~c"], json!({"x": 1}));
        assert!(s.change_custom("a/b~c", json!({"x": 1})).is_none());
    }

    #[test]
    fn a_corrupt_change_is_skipped() {
        let at = crate::now();
        let mut s = UserSettings::defaults("u1", at);
        let bad = SettingChange {
            field: "/theme".to_owned(),
            old_value: Value::Null,
            new_value: json!("purple"),
        };
        s.apply(&[bad], at);
        assert_eq!(s.theme, Theme::Auto);
        assert_eq!(s.version, 2);
    }
}
