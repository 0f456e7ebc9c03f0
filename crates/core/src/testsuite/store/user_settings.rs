//! Event-sourced user settings: per-user event reads and snapshots that never go backwards.

use super::*;
use crate::user_settings::{current_settings, settings_at, SettingsSnapshot, Theme, UserSettings};

/// Appends a `user_settings_updated` event setting `theme` for `user_id`, made at `at`.
pub(super) async fn set_theme(store: &S, user_id: &str, theme: &str, at: DateTime<Utc>) -> i64 {
    let change = crate::user_settings::SettingChange {
        field: "/theme".to_owned(),
        old_value: serde_json::Value::Null,
        new_value: serde_json::Value::from(theme),
    };
    let payload = EventPayload::UserSettingsUpdated {
        user_id: user_id.to_owned(),
        changed_fields: vec!["theme".to_owned()],
        reason: None,
        changes: vec![change],
    };
    let mut env = Envelope::new(
        payload,
        EventMetadata::new("testsuite", Some(user_id.into())),
    )
    .with_aggregate(user_id);
    env.timestamp = at;
    store.append_event(&env).await.unwrap().seq
}

pub async fn settings_events_are_per_user_and_bounded(store: S) {
    let t0 = crate::now() - Duration::seconds(100);
    let first = set_theme(&store, "u1", "dark", t0).await;
    set_theme(&store, "u2", "light", t0).await;
    let second = set_theme(&store, "u1", "light", t0 + Duration::seconds(10)).await;
    let third = set_theme(&store, "u1", "dark", t0 + Duration::seconds(20)).await;
    // Another event type on the same aggregate is not a settings event.
    store
        .append_event(&small_event(EventType::ExecutionQueued, "u1"))
        .await
        .unwrap();

    let seqs =
        |events: Vec<crate::StoredEvent>| events.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    let all = store.settings_events("u1", 0, None).await.unwrap();
    assert_eq!(seqs(all), [first, second, third]);
    let after = store.settings_events("u1", first, None).await.unwrap();
    assert_eq!(seqs(after), [second, third]);
    let until = store
        .settings_events("u1", 0, Some(t0 + Duration::seconds(10)))
        .await
        .unwrap();
    assert_eq!(seqs(until), [first, second], "`until` is inclusive");
    let recent = store.recent_settings_events("u1", 2).await.unwrap();
    assert_eq!(seqs(recent), [third, second], "newest first");
    assert!(store
        .settings_events("nobody", 0, None)
        .await
        .unwrap()
        .is_empty());
}

pub async fn settings_snapshots_never_go_backwards(store: S) {
    assert_eq!(store.settings_snapshot("u1").await.unwrap(), None);
    let mut settings = UserSettings::defaults("u1", crate::now());
    let at_five = SettingsSnapshot {
        settings: settings.clone(),
        last_seq: 5,
    };
    assert!(store.save_settings_snapshot(&at_five).await.unwrap());
    assert_eq!(
        store.settings_snapshot("u1").await.unwrap(),
        Some(at_five.clone())
    );

    settings.theme = Theme::Dark;
    let stale = SettingsSnapshot {
        settings: settings.clone(),
        last_seq: 3,
    };
    assert!(!store.save_settings_snapshot(&stale).await.unwrap());
    assert!(!store
        .save_settings_snapshot(&SettingsSnapshot {
            last_seq: 5,
            ..stale.clone()
        })
        .await
        .unwrap());
    assert_eq!(store.settings_snapshot("u1").await.unwrap(), Some(at_five));

    let newer = SettingsSnapshot {
        settings,
        last_seq: 9,
    };
    assert!(store.save_settings_snapshot(&newer).await.unwrap());
    assert_eq!(store.settings_snapshot("u1").await.unwrap(), Some(newer));
    assert_eq!(store.settings_snapshot("u2").await.unwrap(), None);
}

pub async fn settings_fold_snapshots_and_restores(store: S) {
    let t0 = crate::now() - Duration::seconds(1000);
    let fresh = current_settings(store.as_ref(), "u1").await.unwrap();
    assert_eq!((fresh.theme, fresh.version), (Theme::Auto, 1));
    let again = current_settings(store.as_ref(), "u1").await.unwrap();
    assert_eq!(
        again.created_at, fresh.created_at,
        "defaults are stored once"
    );

    let themes = ["dark", "light"];
    let mut last = 0;
    for i in 0..12 {
        last = set_theme(
            &store,
            "u1",
            themes[i % 2],
            t0 + Duration::seconds(i as i64),
        )
        .await;
    }
    let now = current_settings(store.as_ref(), "u1").await.unwrap();
    assert_eq!((now.theme, now.version), (Theme::Light, 13));
    let snapshot = store.settings_snapshot("u1").await.unwrap().unwrap();
    assert_eq!(
        snapshot.last_seq, last,
        "a snapshot is stored after 10+ replayed events"
    );
    assert_eq!(snapshot.settings, now);
    assert_eq!(current_settings(store.as_ref(), "u1").await.unwrap(), now);

    let past = settings_at(store.as_ref(), "u1", t0 + Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!((past.theme, past.version), (Theme::Dark, 4));
    let before = settings_at(store.as_ref(), "u1", t0 - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!((before.theme, before.version), (Theme::Auto, 1));
}
