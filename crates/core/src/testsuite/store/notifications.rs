//! Notifications: idempotent and throttled creation, listing filters, read state, deletion,
//! subscriptions and the delivery queue.

use super::*;
use crate::notification::{
    Notification, NotificationChannel, NotificationDelivery, NotificationFilter,
    NotificationSeverity, NotificationStatus, Subscription, Throttle,
};
use crate::ports::{CreateNotification, DeliveryOutcome};

pub(super) fn notification(
    user: &str,
    severity: NotificationSeverity,
    tags: &[&str],
) -> Notification {
    Notification {
        notification_id: crate::new_id(),
        user_id: user.to_owned(),
        channel: NotificationChannel::InApp,
        severity,
        status: NotificationStatus::Delivered,
        subject: "Execution Completed: e1".to_owned(),
        body: "Your execution completed successfully. Duration: 0.10s.".to_owned(),
        action_url: Some("/api/v1/executions/e1/result".to_owned()),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        dedup_key: None,
        created_at: crate::now(),
        read_at: None,
    }
}

pub(super) fn created_event(n: &Notification) -> Envelope {
    Envelope::new(
        EventPayload::NotificationCreated {
            notification_id: n.notification_id.clone(),
            user_id: n.user_id.clone(),
            subject: n.subject.clone(),
            body: n.body.clone(),
            severity: n.severity,
            tags: n.tags.clone(),
            channels: vec![NotificationChannel::InApp],
        },
        EventMetadata::new("testsuite", Some(n.user_id.clone())),
    )
    .with_aggregate(n.notification_id.clone())
}

pub(super) fn delivery(n: &Notification, channel: NotificationChannel) -> NotificationDelivery {
    NotificationDelivery {
        notification_id: n.notification_id.clone(),
        channel,
        user_id: n.user_id.clone(),
        status: NotificationStatus::Pending,
        target_url: "https://example.com/hook".to_owned(),
        secret: Some("s3cret".to_owned()),
        attempts: 0,
        max_attempts: 3,
        next_attempt_at: crate::now() - Duration::seconds(1),
        last_error: None,
        delivered_at: None,
        updated_at: crate::now(),
    }
}

pub(super) async fn add(
    store: &S,
    n: &Notification,
    deliveries: &[NotificationDelivery],
) -> Notification {
    match store
        .create_notification(n, deliveries, &created_event(n), None)
        .await
        .unwrap()
    {
        CreateNotification::Created(n, stored) => {
            assert_eq!(stored.envelope.event_type(), EventType::NotificationCreated);
            n
        }
        other => panic!("expected a new notification, got {other:?}"),
    }
}

fn filter(user: &str) -> NotificationFilter {
    NotificationFilter {
        user_id: user.to_owned(),
        limit: 50,
        ..Default::default()
    }
}

pub async fn notifications_create_is_idempotent_and_throttled(store: S) {
    let mut n = notification("u1", NotificationSeverity::Medium, &["execution"]);
    n.dedup_key = Some("exec:e1:completed".to_owned());
    add(&store, &n, &[]).await;
    let mut again = notification("u1", NotificationSeverity::Medium, &["execution"]);
    again.dedup_key = n.dedup_key.clone();
    match store
        .create_notification(&again, &[], &created_event(&again), None)
        .await
        .unwrap()
    {
        CreateNotification::Existing(existing) => assert_eq!(existing, n),
        other => panic!("expected Existing, got {other:?}"),
    }
    // The same key of another user is another notification.
    let mut other = notification("u2", NotificationSeverity::Medium, &[]);
    other.dedup_key = n.dedup_key.clone();
    add(&store, &other, &[]).await;

    let throttle = Throttle {
        max: 2,
        since: crate::now() - Duration::hours(1),
    };
    let second = notification("u1", NotificationSeverity::Medium, &[]);
    let r = store
        .create_notification(&second, &[], &created_event(&second), Some(throttle))
        .await
        .unwrap();
    assert!(matches!(r, CreateNotification::Created(..)), "{r:?}");
    let third = notification("u1", NotificationSeverity::Medium, &[]);
    let r = store
        .create_notification(&third, &[], &created_event(&third), Some(throttle))
        .await
        .unwrap();
    assert_eq!(r, CreateNotification::Throttled);
    assert_eq!(
        store.notification(&third.notification_id).await.unwrap(),
        None
    );
    // Other severities have their own budget; an old window does not count.
    let high = notification("u1", NotificationSeverity::High, &[]);
    let r = store
        .create_notification(&high, &[], &created_event(&high), Some(throttle))
        .await
        .unwrap();
    assert!(matches!(r, CreateNotification::Created(..)), "{r:?}");
    let later = Throttle {
        max: 2,
        since: crate::now() + Duration::seconds(1),
    };
    let r = store
        .create_notification(&third, &[], &created_event(&third), Some(later))
        .await
        .unwrap();
    assert!(matches!(r, CreateNotification::Created(..)), "{r:?}");
}

pub async fn notifications_list_filters_and_pages(store: S) {
    let a = add(
        &store,
        &notification(
            "u1",
            NotificationSeverity::Medium,
            &["execution", "completed", "exec:1"],
        ),
        &[],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let b = add(
        &store,
        &notification(
            "u1",
            NotificationSeverity::High,
            &["execution", "failed", "exec:2"],
        ),
        &[],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let c = add(
        &store,
        &notification("u1", NotificationSeverity::Low, &["system"]),
        &[],
    )
    .await;
    add(
        &store,
        &notification("u2", NotificationSeverity::Low, &["execution"]),
        &[],
    )
    .await;

    let ids = |v: Vec<Notification>| v.into_iter().map(|n| n.notification_id).collect::<Vec<_>>();
    let (all, total) = store.list_notifications(&filter("u1")).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        ids(all),
        vec![
            c.notification_id.clone(),
            b.notification_id.clone(),
            a.notification_id.clone()
        ]
    );

    let mut f = filter("u1");
    f.include_tags = vec!["completed".into(), "failed".into()];
    let (v, total) = store.list_notifications(&f).await.unwrap();
    assert_eq!(
        (ids(v), total),
        (
            vec![b.notification_id.clone(), a.notification_id.clone()],
            2
        )
    );

    let mut f = filter("u1");
    f.exclude_tags = vec!["execution".into()];
    let (v, _) = store.list_notifications(&f).await.unwrap();
    assert_eq!(ids(v), vec![c.notification_id.clone()]);

    let mut f = filter("u1");
    f.tag_prefix = Some("exec:".into());
    let (v, total) = store.list_notifications(&f).await.unwrap();
    assert_eq!((v.len(), total), (2, 2));
    f.tag_prefix = Some("exec%".into());
    assert_eq!(store.list_notifications(&f).await.unwrap().1, 0);

    let mut f = filter("u1");
    f.limit = 1;
    f.offset = 1;
    let (v, total) = store.list_notifications(&f).await.unwrap();
    assert_eq!((ids(v), total), (vec![b.notification_id.clone()], 3));

    store
        .mark_notification_read("u1", &a.notification_id, crate::now())
        .await
        .unwrap();
    let mut f = filter("u1");
    f.status = Some(NotificationStatus::Read);
    let (v, _) = store.list_notifications(&f).await.unwrap();
    assert_eq!(ids(v), vec![a.notification_id.clone()]);
}

pub async fn notifications_read_state_is_per_owner(store: S) {
    let a = add(
        &store,
        &notification("u1", NotificationSeverity::Medium, &[]),
        &[],
    )
    .await;
    let b = add(
        &store,
        &notification("u1", NotificationSeverity::Medium, &[]),
        &[],
    )
    .await;
    let mut skipped = notification("u1", NotificationSeverity::Medium, &[]);
    skipped.status = NotificationStatus::Skipped;
    add(&store, &skipped, &[]).await;
    assert_eq!(store.unread_notifications("u1").await.unwrap(), 2);
    assert_eq!(store.unread_notifications("u2").await.unwrap(), 0);

    assert!(!store
        .mark_notification_read("u2", &a.notification_id, crate::now())
        .await
        .unwrap());
    assert!(!store
        .mark_notification_read("u1", "missing", crate::now())
        .await
        .unwrap());
    assert!(store
        .mark_notification_read("u1", &a.notification_id, crate::now())
        .await
        .unwrap());
    // Already read: still found, nothing changes.
    assert!(store
        .mark_notification_read("u1", &a.notification_id, crate::now())
        .await
        .unwrap());
    let read = store
        .notification(&a.notification_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.status, NotificationStatus::Read);
    assert!(read.read_at.is_some());
    assert_eq!(store.unread_notifications("u1").await.unwrap(), 1);

    assert_eq!(
        store
            .mark_all_notifications_read("u2", crate::now())
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .mark_all_notifications_read("u1", crate::now())
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(store.unread_notifications("u1").await.unwrap(), 0);
    assert_eq!(
        store
            .mark_all_notifications_read("u1", crate::now())
            .await
            .unwrap(),
        0
    );
    let b = store
        .notification(&b.notification_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.status, NotificationStatus::Read);
}

pub async fn notifications_delete_by_owner_only(store: S) {
    let n = notification("u1", NotificationSeverity::Medium, &[]);
    add(&store, &n, &[delivery(&n, NotificationChannel::Webhook)]).await;
    assert!(!store
        .delete_notification("u2", &n.notification_id)
        .await
        .unwrap());
    assert!(store
        .delete_notification("u1", &n.notification_id)
        .await
        .unwrap());
    assert!(!store
        .delete_notification("u1", &n.notification_id)
        .await
        .unwrap());
    assert_eq!(store.notification(&n.notification_id).await.unwrap(), None);
    assert!(store
        .deliveries(&n.notification_id)
        .await
        .unwrap()
        .is_empty());

    add(
        &store,
        &notification("u3", NotificationSeverity::Low, &[]),
        &[],
    )
    .await;
    add(
        &store,
        &notification("u3", NotificationSeverity::Low, &[]),
        &[],
    )
    .await;
    store
        .save_subscription(&Subscription::default_for("u3", NotificationChannel::Slack))
        .await
        .unwrap();
    assert_eq!(store.delete_user_notifications("u3").await.unwrap(), 2);
    assert!(store.subscriptions("u3").await.unwrap().is_empty());
}

pub async fn notification_subscriptions_upsert_per_channel(store: S) {
    assert!(store.subscriptions("u1").await.unwrap().is_empty());
    let mut s = Subscription::default_for("u1", NotificationChannel::Webhook);
    s.webhook_url = Some("https://example.com/hook".into());
    s.webhook_secret = Some("k".into());
    s.severities = vec![NotificationSeverity::High, NotificationSeverity::Urgent];
    s.include_tags = vec!["failed".into()];
    let saved = store.save_subscription(&s).await.unwrap();
    assert_eq!(saved, s);

    let mut changed = Subscription::default_for("u1", NotificationChannel::Webhook);
    changed.enabled = false;
    changed.created_at = crate::now() + Duration::hours(1);
    let saved = store.save_subscription(&changed).await.unwrap();
    assert!(!saved.enabled);
    assert_eq!(saved.webhook_url, None);
    assert_eq!(saved.created_at, s.created_at, "created_at is kept");

    store
        .save_subscription(&Subscription::default_for("u1", NotificationChannel::InApp))
        .await
        .unwrap();
    store
        .save_subscription(&Subscription::default_for("u2", NotificationChannel::Slack))
        .await
        .unwrap();
    let mine = store.subscriptions("u1").await.unwrap();
    let channels: HashSet<_> = mine.iter().map(|s| s.channel).collect();
    assert_eq!(channels.len(), 2);
    assert!(mine.iter().all(|s| s.user_id == "u1"));
}

pub async fn notification_deliveries_claim_retry_and_settle(store: S) {
    let n = notification("u1", NotificationSeverity::High, &[]);
    let mut later = delivery(&n, NotificationChannel::Slack);
    later.next_attempt_at = crate::now() + Duration::hours(1);
    add(
        &store,
        &n,
        &[delivery(&n, NotificationChannel::Webhook), later],
    )
    .await;

    let now = crate::now();
    let lease = now + Duration::seconds(30);
    let claimed = store.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the due delivery: {claimed:?}");
    let d = &claimed[0];
    assert_eq!(
        (d.channel, d.status, d.attempts),
        (NotificationChannel::Webhook, NotificationStatus::Sending, 1)
    );
    assert_eq!(d.secret.as_deref(), Some("s3cret"));
    // Claimed: not handed out again while the claim lasts.
    assert!(store
        .claim_deliveries(now, lease, 10)
        .await
        .unwrap()
        .is_empty());

    let retry_at = now + Duration::seconds(2);
    let retry = DeliveryOutcome::Retry {
        at: retry_at,
        error: "HTTP 500".into(),
    };
    assert!(
        !store
            .finish_delivery(&n.notification_id, d.channel, 7, &retry)
            .await
            .unwrap(),
        "stale attempt"
    );
    assert!(store
        .finish_delivery(&n.notification_id, d.channel, 1, &retry)
        .await
        .unwrap());
    assert!(
        store
            .claim_deliveries(now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = store
        .claim_deliveries(retry_at, retry_at + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 2);
    assert_eq!(claimed[0].last_error.as_deref(), Some("HTTP 500"));

    // An expired claim (a worker that died) is handed out again.
    let after_lease = retry_at + Duration::seconds(31);
    let claimed = store
        .claim_deliveries(after_lease, after_lease + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 3);
    assert!(!store
        .finish_delivery(
            &n.notification_id,
            d.channel,
            2,
            &DeliveryOutcome::Delivered { at: after_lease }
        )
        .await
        .unwrap());
    assert!(store
        .finish_delivery(
            &n.notification_id,
            d.channel,
            3,
            &DeliveryOutcome::Delivered { at: after_lease }
        )
        .await
        .unwrap());
    let all = store.deliveries(&n.notification_id).await.unwrap();
    let webhook = all
        .iter()
        .find(|d| d.channel == NotificationChannel::Webhook)
        .unwrap();
    assert_eq!(webhook.status, NotificationStatus::Delivered);
    assert!(webhook.delivered_at.is_some());
    let slack = all
        .iter()
        .find(|d| d.channel == NotificationChannel::Slack)
        .unwrap();
    assert_eq!(slack.status, NotificationStatus::Pending);

    let far = crate::now() + Duration::hours(2);
    let claimed = store
        .claim_deliveries(far, far + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let failed = DeliveryOutcome::Failed {
        at: far,
        error: "gone".into(),
    };
    assert!(store
        .finish_delivery(&n.notification_id, NotificationChannel::Slack, 1, &failed)
        .await
        .unwrap());
    let far = far + Duration::hours(1);
    assert!(
        store
            .claim_deliveries(far, far, 10)
            .await
            .unwrap()
            .is_empty(),
        "settled deliveries stay settled"
    );

    assert_eq!(
        store
            .reopen_failed_deliveries(&n.notification_id, far)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .reopen_failed_deliveries(&n.notification_id, far)
            .await
            .unwrap(),
        0
    );
    let claimed = store
        .claim_deliveries(far, far + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].channel, claimed[0].attempts),
        (NotificationChannel::Slack, 1)
    );
}
