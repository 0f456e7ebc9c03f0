//! Deleting a user with their data reaches every table that holds per-user rows (each adapter
//! lists them explicitly), and nothing of another user.

use super::*;
use crate::notification::{
    NotificationChannel, NotificationFilter, NotificationSeverity, Subscription,
};
use crate::ports::ratelimit::UserRateLimit;
use crate::user_settings::{SettingsSnapshot, UserSettings};

/// One row of every per-user kind for `user_id`.
async fn everything_of(store: &S, user_id: &str) {
    store
        .create_script(&super::scripts::saved(user_id, "kept?"))
        .await
        .unwrap();
    let n = super::notifications::notification(user_id, NotificationSeverity::High, &["t"]);
    let webhook = super::notifications::delivery(&n, NotificationChannel::Webhook);
    super::notifications::add(store, &n, &[webhook]).await;
    store
        .save_subscription(&Subscription::default_for(
            user_id,
            NotificationChannel::Slack,
        ))
        .await
        .unwrap();
    let seq = super::user_settings::set_theme(store, user_id, "dark", crate::now()).await;
    store
        .save_settings_snapshot(&SettingsSnapshot {
            settings: UserSettings::defaults(user_id, crate::now()),
            last_seq: seq,
        })
        .await
        .unwrap();
    let now = crate::now();
    store
        .put_user_rate_limit(&UserRateLimit {
            user_id: user_id.to_owned(),
            bypass_rate_limit: true,
            global_multiplier: 1.0,
            rules: Vec::new(),
            created_at: now,
            updated_at: now,
            notes: None,
        })
        .await
        .unwrap();
}

/// What is left of `user_id`'s per-user rows, kind by kind.
async fn left_of(store: &S, user_id: &str) -> [usize; 6] {
    let notifications = store
        .list_notifications(&NotificationFilter {
            user_id: user_id.to_owned(),
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .0;
    let mut deliveries = 0;
    for n in &notifications {
        deliveries += store.deliveries(&n.notification_id).await.unwrap().len();
    }
    [
        store.list_scripts(user_id).await.unwrap().len(),
        notifications.len(),
        deliveries,
        store.subscriptions(user_id).await.unwrap().len(),
        usize::from(store.settings_snapshot(user_id).await.unwrap().is_some())
            + store
                .recent_settings_events(user_id, 0)
                .await
                .unwrap()
                .len(),
        usize::from(store.get_user_rate_limit(user_id).await.unwrap().is_some()),
    ]
}

pub async fn user_admin_delete_cascades_every_owned_table(store: S) {
    let victim = store.create_user(&new_user("victim")).await.unwrap();
    let other = store.create_user(&new_user("bystander")).await.unwrap();
    for user in [&victim, &other] {
        everything_of(&store, &user.user_id).await;
    }
    assert_eq!(left_of(&store, &victim.user_id).await, [1, 1, 1, 1, 2, 1]);

    let counts = store
        .delete_user(&victim.user_id, true)
        .await
        .unwrap()
        .expect("the user existed");
    assert_eq!(counts.saved_scripts, 1);
    assert_eq!(counts.notifications, 1);
    // The settings snapshot and the settings change event.
    assert_eq!(counts.user_settings, 2);
    assert_eq!(
        left_of(&store, &victim.user_id).await,
        [0; 6],
        "scripts, notifications, deliveries, subscriptions, settings, rate limits"
    );
    assert_eq!(
        left_of(&store, &other.user_id).await,
        [1, 1, 1, 1, 2, 1],
        "another user's data is untouched"
    );
}
