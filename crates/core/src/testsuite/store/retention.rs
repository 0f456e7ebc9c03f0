//! Retention: rows older than the cutoff go in bounded batches, newer ones stay; sweep leases
//! have one holder at a time.

use super::*;
use crate::notification::NotificationSeverity;
use crate::ports::replay::{
    ReplayConfig, ReplayFilter, ReplaySession, ReplayStatus, ReplayTarget, ReplayType,
};
use crate::ports::retention::RetentionKind;
use crate::system_settings::{SettingsAuditAction, SystemSettings};

/// A moment strictly between what was written before and what is written after it.
async fn boundary() -> DateTime<Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let at = crate::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    at
}

async fn finished(store: &S, user: &str) -> Execution {
    let e = create(store, &sample_execution(user, "python", Duration::zero())).await;
    let result = ExecutionResultRecord {
        status: ExecutionStatus::Completed,
        stdout: "out".to_owned(),
        stderr: String::new(),
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        resource_usage: None,
    };
    assert!(store
        .finish_execution(&e.execution_id, &result)
        .await
        .unwrap());
    e
}

async fn purge_all(store: &S, kind: RetentionKind, cutoff: DateTime<Utc>) -> u64 {
    let mut total = 0;
    loop {
        let n = store.purge_before(kind, cutoff, 2).await.unwrap();
        total += n;
        if n < 2 {
            return total;
        }
    }
}

pub async fn retention_purges_old_events_and_executions_only(store: S) {
    let old_runs = [
        finished(&store, "u1").await,
        finished(&store, "u1").await,
        finished(&store, "u2").await,
    ];
    let running = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let audit = Envelope::new(
        EventPayload::AuthFailed {
            username: Some("u1".to_owned()),
            reason: "bad password".to_owned(),
            ip_address: None,
        },
        EventMetadata::new("testsuite", None),
    );
    store.append_event(&audit).await.unwrap();
    let cutoff = boundary().await;
    let new_run = finished(&store, "u1").await;

    assert_eq!(
        purge_all(&store, RetentionKind::Executions, cutoff).await,
        3,
        "three finished executions were older"
    );
    for e in &old_runs {
        assert_eq!(store.execution(&e.execution_id).await.unwrap(), None);
    }
    assert!(
        store
            .execution(&running.execution_id)
            .await
            .unwrap()
            .is_some(),
        "unfinished runs stay"
    );
    assert!(store
        .execution(&new_run.execution_id)
        .await
        .unwrap()
        .is_some());

    let before = store.events_after(&[], 0, 1000).await.unwrap();
    let old_events = before
        .iter()
        .filter(|e| {
            e.envelope.timestamp < cutoff && e.envelope.event_type() != EventType::AuthFailed
        })
        .count() as u64;
    assert!(old_events >= 4);
    assert_eq!(
        purge_all(&store, RetentionKind::Events, cutoff).await,
        old_events
    );
    let after = store.events_after(&[], 0, 1000).await.unwrap();
    assert!(after.iter().all(
        |e| e.envelope.timestamp >= cutoff || e.envelope.event_type() == EventType::AuthFailed
    ));
    assert!(
        after.iter().any(
            |e| e.envelope.aggregate_id.as_deref() == Some(&new_run.execution_id)
                || e.envelope.execution_id() == Some(&new_run.execution_id)
        ),
        "newer events stay"
    );
    assert!(
        after.iter().any(|e| e.envelope.event_id == audit.event_id),
        "audit events follow their own retention"
    );
    assert_eq!(purge_all(&store, RetentionKind::Audit, cutoff).await, 1);
    assert!(store.event_by_id(&audit.event_id).await.unwrap().is_none());
    assert_eq!(
        purge_all(&store, RetentionKind::Events, cutoff).await,
        0,
        "idempotent"
    );
}

pub async fn retention_purges_old_notifications_and_audit(store: S) {
    let old = notifications::notification("u1", NotificationSeverity::Medium, &[]);
    notifications::add(&store, &old, &[]).await;
    let settings = SystemSettings::default();
    let entry = || {
        admin::audit(
            SettingsAuditAction::SystemSettingsReset,
            &settings,
            &settings,
        )
    };
    let old_audit = entry();
    store.reset_system_settings(&old_audit).await.unwrap();
    let cutoff = boundary().await;
    let mut new = notifications::notification("u1", NotificationSeverity::Medium, &[]);
    new.created_at = crate::now();
    notifications::add(&store, &new, &[]).await;
    let new_audit = entry();
    store.reset_system_settings(&new_audit).await.unwrap();

    assert_eq!(
        purge_all(&store, RetentionKind::Notifications, cutoff).await,
        1
    );
    assert!(store
        .notification(&old.notification_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .notification(&new.notification_id)
        .await
        .unwrap()
        .is_some());
    assert!(purge_all(&store, RetentionKind::Audit, cutoff).await >= 1);
    let (log, _) = store.settings_audit_log(10, 0).await.unwrap();
    let ids: Vec<&str> = log.iter().map(|a| a.audit_id.as_str()).collect();
    assert_eq!(ids, [new_audit.audit_id.as_str()]);
}

pub async fn retention_lease_has_one_holder(store: S) {
    let now = crate::now();
    let until = now + Duration::seconds(60);
    assert!(store.try_lease("sweep", "a", now, until).await.unwrap());
    assert!(
        !store.try_lease("sweep", "b", now, until).await.unwrap(),
        "held by a"
    );
    assert!(
        store.try_lease("sweep", "a", now, until).await.unwrap(),
        "a renews"
    );
    assert!(
        store.try_lease("other", "b", now, until).await.unwrap(),
        "leases are per name"
    );
    assert!(
        store
            .try_lease("sweep", "b", until, until + Duration::seconds(60))
            .await
            .unwrap(),
        "an expired lease goes to the next taker"
    );
    assert!(!store.try_lease("sweep", "a", until, until).await.unwrap());
    store.release_lease("sweep", "a").await.unwrap();
    assert!(
        !store.try_lease("sweep", "a", until, until).await.unwrap(),
        "only the holder releases"
    );
    store.release_lease("sweep", "b").await.unwrap();
    assert!(store
        .try_lease("sweep", "a", until, until + Duration::seconds(1))
        .await
        .unwrap());
}

fn replay_session(created_at: DateTime<Utc>) -> ReplaySession {
    let config = ReplayConfig {
        replay_type: ReplayType::Query,
        target: ReplayTarget::Test,
        filter: ReplayFilter::default(),
        speed_multiplier: 1.0,
        preserve_timestamps: false,
        batch_size: 100,
        max_events: None,
        target_topics: None,
        target_file_path: None,
        skip_errors: true,
        retry_failed: false,
        retry_attempts: 3,
        enable_progress_tracking: true,
    };
    let mut session = ReplaySession::new(config, None);
    session.created_at = created_at;
    session
}

pub async fn retention_purges_replay_sessions_in_batches(store: S) {
    let old = crate::now() - Duration::hours(2);
    let mut purgeable = Vec::new();
    for _ in 0..3 {
        let s = replay_session(old);
        store.create_replay_session(&s).await.unwrap();
        purgeable.push(s.session_id);
    }
    let finished = replay_session(old);
    store.create_replay_session(&finished).await.unwrap();
    for (from, to) in [
        (ReplayStatus::Created, ReplayStatus::Running),
        (ReplayStatus::Running, ReplayStatus::Completed),
    ] {
        assert!(store
            .transition_replay_session(&finished.session_id, &[from], to, None, old)
            .await
            .unwrap());
    }
    purgeable.push(finished.session_id);
    let running = replay_session(old);
    store.create_replay_session(&running).await.unwrap();
    assert!(store
        .transition_replay_session(
            &running.session_id,
            &[ReplayStatus::Created],
            ReplayStatus::Running,
            None,
            old
        )
        .await
        .unwrap());
    let cutoff = boundary().await;
    let recent = replay_session(crate::now());
    store.create_replay_session(&recent).await.unwrap();

    let kind = RetentionKind::ReplaySessions;
    assert_eq!(
        store.purge_before(kind, cutoff, 3).await.unwrap(),
        3,
        "one batch"
    );
    assert_eq!(store.purge_before(kind, cutoff, 3).await.unwrap(), 1);
    assert_eq!(store.purge_before(kind, cutoff, 3).await.unwrap(), 0);
    for id in &purgeable {
        assert_eq!(store.replay_session(id).await.unwrap(), None, "{id} purged");
    }
    for kept in [&running, &recent] {
        assert!(
            store
                .replay_session(&kept.session_id)
                .await
                .unwrap()
                .is_some(),
            "running and recent sessions stay"
        );
    }
}
