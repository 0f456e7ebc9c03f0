//! Replay sessions and the event selection they replay.

use super::*;
use crate::ports::replay::{
    ReplayConfig, ReplayCursor, ReplayError, ReplayFilter, ReplayProgress, ReplaySession,
    ReplayStatus, ReplayTarget, ReplayType,
};

fn config(filter: ReplayFilter) -> ReplayConfig {
    ReplayConfig {
        replay_type: ReplayType::Query,
        target: ReplayTarget::Test,
        filter,
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
    }
}

/// An event of `payload`'s type at `at`, by `user`.
fn event_at(execution_id: &str, user: &str, at: DateTime<Utc>) -> Envelope {
    let mut env = Envelope::new(
        EventPayload::ExecutionQueued {
            execution_id: execution_id.to_owned(),
            position_in_queue: None,
            estimated_start_time: None,
        },
        EventMetadata::new("coordinator", Some(user.to_owned())),
    );
    env.timestamp = at;
    env
}

pub async fn replay_session_lifecycle(store: S) {
    let session = ReplaySession::new(config(ReplayFilter::default()), Some("admin".to_owned()));
    store.create_replay_session(&session).await.unwrap();
    assert!(matches!(
        store.create_replay_session(&session).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.replay_session(&session.session_id).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.replay_session("missing").await.unwrap(), None);
    let mut older = ReplaySession::new(config(ReplayFilter::default()), None);
    older.created_at = crate::now() - Duration::hours(30);
    store.create_replay_session(&older).await.unwrap();

    let now = crate::now();
    let id = &session.session_id;
    assert!(!store
        .transition_replay_session(
            id,
            &[ReplayStatus::Running],
            ReplayStatus::Paused,
            None,
            now
        )
        .await
        .unwrap());
    assert!(store
        .transition_replay_session(
            id,
            &[ReplayStatus::Created],
            ReplayStatus::Running,
            Some(7),
            now
        )
        .await
        .unwrap());
    let running = store.replay_session(id).await.unwrap().unwrap();
    assert_eq!(
        (running.status, running.total_events, running.started_at),
        (ReplayStatus::Running, 7, Some(now))
    );

    let listed = store.list_replay_sessions(None, 0).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].session_id, session.session_id, "newest first");
    let only_running = store
        .list_replay_sessions(Some(ReplayStatus::Running), 10)
        .await
        .unwrap();
    assert_eq!(only_running.len(), 1);
    assert_eq!(store.list_replay_sessions(None, 1).await.unwrap().len(), 1);

    // One runner at a time holds a running session.
    let lease = now + Duration::seconds(30);
    let claimed = store
        .claim_replay_session(now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.session_id, *id);
    assert!(store
        .claim_replay_session(now, lease)
        .await
        .unwrap()
        .is_none());
    let expired = lease + Duration::seconds(1);
    assert!(store
        .claim_replay_session(expired, expired)
        .await
        .unwrap()
        .is_some());
    store.lease_replay_session(id, None).await.unwrap();
    assert!(store
        .claim_replay_session(now, lease)
        .await
        .unwrap()
        .is_some());

    let progress = ReplayProgress {
        replayed_events: 3,
        failed_events: 1,
        skipped_events: 2,
        last_event_at: Some(now),
        errors: vec![ReplayError {
            timestamp: now,
            error: "bad".to_owned(),
            error_type: Some("io".to_owned()),
            event_id: Some("ev".to_owned()),
        }],
        cursor: Some(ReplayCursor {
            timestamp: now,
            seq: 9,
        }),
    };
    assert!(store.save_replay_progress(id, &progress).await.unwrap());
    assert!(!store
        .save_replay_progress("missing", &progress)
        .await
        .unwrap());
    let saved = store.replay_session(id).await.unwrap().unwrap();
    assert_eq!(saved.processed_events(), 6);
    assert_eq!(saved.errors, progress.errors);
    assert_eq!(saved.cursor, progress.cursor);
    assert_eq!(
        saved.status,
        ReplayStatus::Running,
        "progress leaves the status alone"
    );

    assert!(store
        .transition_replay_session(
            id,
            &[ReplayStatus::Running],
            ReplayStatus::Completed,
            None,
            now
        )
        .await
        .unwrap());
    let done = store.replay_session(id).await.unwrap().unwrap();
    assert_eq!(done.completed_at, Some(now));
    assert!(store
        .claim_replay_session(expired, expired)
        .await
        .unwrap()
        .is_none());

    // Cleanup removes old finished (or never started) sessions only.
    assert_eq!(
        store
            .delete_replay_sessions_before(crate::now() - Duration::hours(24))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_replay_sessions_before(crate::now() + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .list_replay_sessions(None, 0)
        .await
        .unwrap()
        .is_empty());
}

pub async fn replay_events_filter_and_order(store: S) {
    let t0 = crate::now() - Duration::hours(1);
    // Appended out of time order: the selection follows timestamps.
    let late = store
        .append_event(&event_at("e1", "u1", t0 + Duration::minutes(10)))
        .await
        .unwrap();
    let early = store.append_event(&event_at("e1", "u1", t0)).await.unwrap();
    let other = store
        .append_event(&event_at("e2", "u2", t0 + Duration::minutes(5)))
        .await
        .unwrap();

    // A copy published by a replay is never selected.
    let mut copy = event_at("e1", "u1", t0 + Duration::minutes(1));
    copy.metadata.correlation_id = Some(crate::ports::replay::replay_correlation("s", "x"));
    store.append_event(&copy).await.unwrap();

    let all = ReplayFilter::default();
    let got = store.replay_events(&all, None, 0).await.unwrap();
    let ids: Vec<_> = got.iter().map(|e| e.seq).collect();
    assert_eq!(ids, vec![early.seq, other.seq, late.seq]);
    assert_eq!(store.count_replay_events(&all).await.unwrap(), 3);

    let after = ReplayCursor {
        timestamp: other.envelope.timestamp,
        seq: other.seq,
    };
    let rest = store.replay_events(&all, Some(after), 0).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].seq, late.seq);
    assert_eq!(store.replay_events(&all, None, 2).await.unwrap().len(), 2);

    let by_execution = ReplayFilter {
        execution_id: Some("e1".to_owned()),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&by_execution).await.unwrap(), 2);
    let by_user = ReplayFilter {
        user_id: Some("u2".to_owned()),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&by_user).await.unwrap(), 1);
    let by_ids = ReplayFilter {
        event_ids: Some(vec![late.envelope.event_id.clone(), "nope".to_owned()]),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&by_ids).await.unwrap(), 1);
    let by_time = ReplayFilter {
        start_time: Some(t0 + Duration::minutes(1)),
        end_time: Some(t0 + Duration::minutes(5)),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&by_time).await.unwrap(), 1);
    let by_type = ReplayFilter {
        event_types: Some(vec![EventType::ExecutionQueued]),
        exclude_event_types: Some(vec![EventType::ExecutionRequested]),
        service_name: Some("coordinator".to_owned()),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&by_type).await.unwrap(), 3);
    let excluded = ReplayFilter {
        exclude_event_types: Some(vec![EventType::ExecutionQueued]),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&excluded).await.unwrap(), 0);
    let wrong_service = ReplayFilter {
        service_name: Some("api".to_owned()),
        aggregate_id: Some("e1".to_owned()),
        ..Default::default()
    };
    assert_eq!(store.count_replay_events(&wrong_service).await.unwrap(), 0);
}
