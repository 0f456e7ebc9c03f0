//! Admin views: the system settings document and its audit log, user search / update / cascade
//! delete, and event queries with archive-on-delete.

use crate::ports::admin::{EventCursor, EventQuery, UserListFilter, UserUpdate};
use crate::system_settings::{SettingsAuditAction, SettingsAuditEntry, SystemSettings};

use super::*;

pub(super) fn audit(
    action: SettingsAuditAction,
    old: &SystemSettings,
    new: &SystemSettings,
) -> SettingsAuditEntry {
    SettingsAuditEntry {
        audit_id: crate::new_id(),
        action,
        user_id: "admin-id".to_owned(),
        username: "admin".to_owned(),
        timestamp: crate::now(),
        old_values: old.clone(),
        new_values: new.clone(),
    }
}

pub async fn system_settings_save_reset_and_audit(store: S) {
    assert_eq!(store.system_settings().await.unwrap(), None);
    let defaults = SystemSettings::default();
    let changed = SystemSettings {
        max_concurrent_executions: 3,
        memory_limit: "64Mi".to_owned(),
        ..SystemSettings::default()
    };
    let first = audit(
        SettingsAuditAction::SystemSettingsUpdated,
        &defaults,
        &changed,
    );
    store.save_system_settings(&changed, &first).await.unwrap();
    assert_eq!(
        store.system_settings().await.unwrap(),
        Some(changed.clone())
    );

    let again = SystemSettings {
        max_concurrent_executions: 5,
        ..changed.clone()
    };
    let second = audit(SettingsAuditAction::SystemSettingsUpdated, &changed, &again);
    store.save_system_settings(&again, &second).await.unwrap();
    assert_eq!(store.system_settings().await.unwrap(), Some(again.clone()));

    let reset = audit(SettingsAuditAction::SystemSettingsReset, &again, &defaults);
    store.reset_system_settings(&reset).await.unwrap();
    assert_eq!(store.system_settings().await.unwrap(), None);

    let (log, total) = store.settings_audit_log(0, 0).await.unwrap();
    assert_eq!(total, 3);
    let ids: Vec<_> = log.iter().map(|e| e.audit_id.as_str()).collect();
    assert_eq!(
        ids,
        [&reset.audit_id, &second.audit_id, &first.audit_id],
        "newest first"
    );
    assert_eq!(log[1].old_values, changed);
    assert_eq!(log[1].new_values, again);
    let (page, total) = store.settings_audit_log(1, 1).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].audit_id, second.audit_id);
}

/// The settings in force follow the store: defaults until a save, the stored document after
/// it (seen through any handle on the same store), the defaults again after a reset.
pub async fn effective_settings_follow_the_store(store: S) {
    use crate::effective_settings::EffectiveSettings;
    let defaults = SystemSettings {
        max_concurrent_executions: 7,
        ..SystemSettings::default()
    };
    let settings = EffectiveSettings::new(store.clone(), defaults.clone());
    let base = QueuePolicy {
        max_active: 99,
        max_active_per_user: 2,
        ageing_seconds: 30,
    };
    assert_eq!(settings.current().await.unwrap(), defaults);
    assert_eq!(settings.stored().await.unwrap(), None);
    assert_eq!(settings.queue_policy(base).await.unwrap().max_active, 7);

    let saved = SystemSettings {
        max_concurrent_executions: 0,
        max_timeout_seconds: 42,
        ..defaults.clone()
    };
    let entry = audit(
        SettingsAuditAction::SystemSettingsUpdated,
        &defaults,
        &saved,
    );
    store.save_system_settings(&saved, &entry).await.unwrap();
    let other = EffectiveSettings::new(store.clone(), SystemSettings::default());
    assert_eq!(settings.current().await.unwrap(), saved);
    assert_eq!(other.current().await.unwrap(), saved);
    let policy = settings.queue_policy(base).await.unwrap();
    assert_eq!(
        policy.max_active, 1,
        "a stored 0 still admits one execution"
    );
    assert_eq!(
        (policy.max_active_per_user, policy.ageing_seconds),
        (2, 30),
        "the rest of the policy is the configured one"
    );

    let entry = audit(SettingsAuditAction::SystemSettingsReset, &saved, &defaults);
    store.reset_system_settings(&entry).await.unwrap();
    assert_eq!(settings.current().await.unwrap(), defaults);
    assert_eq!(settings.defaults(), &defaults);
}

pub async fn user_admin_search_filters_and_updates(store: S) {
    let alice = store.create_user(&new_user("Alice_1")).await.unwrap();
    let mut admin = new_user("root");
    admin.role = Role::Admin;
    admin.email = "ops@corp.example".to_owned();
    let root = store.create_user(&admin).await.unwrap();
    store.create_user(&new_user("aliceX1")).await.unwrap();

    let list = |search: Option<&str>, role: Option<Role>| {
        let store = store.clone();
        let filter = UserListFilter {
            search: search.map(str::to_owned),
            role,
            limit: 100,
            offset: 0,
        };
        async move { store.list_users(&filter).await.unwrap() }
    };
    let (all, total) = list(None, None).await;
    assert_eq!((all.len(), total), (3, 3));
    let (found, _) = list(Some("ALICE"), None).await;
    assert_eq!(found.len(), 2, "case-insensitive substring");
    let (found, total) = list(Some("e_1"), None).await;
    assert_eq!(total, 1, "`_` is literal, not a wildcard");
    assert_eq!(found[0].user_id, alice.user_id);
    let (found, _) = list(Some("corp.example"), None).await;
    assert_eq!(found[0].user_id, root.user_id, "email is searched too");
    let (found, _) = list(None, Some(Role::Admin)).await;
    assert_eq!(found.len(), 1);
    let paged = store
        .list_users(&UserListFilter {
            limit: 1,
            offset: 1,
            ..UserListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((paged.0.len(), paged.1), (1, 3));

    let update = UserUpdate {
        email: Some("new@example.com".to_owned()),
        role: Some(Role::Moderator),
        is_active: Some(false),
        password_hash: Some("other-hash".to_owned()),
        ..UserUpdate::default()
    };
    let updated = store
        .update_user(&alice.user_id, &update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.email, "new@example.com");
    assert_eq!(updated.role, Role::Moderator);
    assert!(!updated.is_active);
    assert_eq!(updated.password_hash, "other-hash");
    assert_eq!(updated.username, alice.username, "unset fields are kept");
    assert!(updated.updated_at >= alice.updated_at);

    let taken = UserUpdate {
        username: Some("root".to_owned()),
        ..UserUpdate::default()
    };
    match store.update_user(&alice.user_id, &taken).await {
        Err(StoreError::Conflict(field)) => assert_eq!(field, "username"),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    assert_eq!(store.update_user("missing", &update).await.unwrap(), None);
}

pub async fn user_admin_delete_cascades_owned_data(store: S) {
    let victim = store.create_user(&new_user("victim")).await.unwrap();
    let other = store.create_user(&new_user("other")).await.unwrap();
    let mine = create(
        &store,
        &sample_execution(&victim.user_id, "python", Duration::zero()),
    )
    .await;
    let theirs = create(
        &store,
        &sample_execution(&other.user_id, "python", Duration::zero()),
    )
    .await;
    for e in [&mine, &theirs] {
        store
            .enqueue(&QueueEntry {
                execution_id: e.execution_id.clone(),
                user_id: e.user_id.clone(),
                priority: Priority::Normal,
                enqueued_at: crate::now(),
                active_since: None,
            })
            .await
            .unwrap();
        store
            .get_or_create_saga(&Saga::new(&e.execution_id, &e.user_id))
            .await
            .unwrap();
        store.allocate(&e.execution_id, "python").await.unwrap();
    }
    store
        .append_event(&small_event(EventType::ResultStored, &mine.execution_id))
        .await
        .unwrap();

    let status = store
        .execution_status_counts(&victim.user_id)
        .await
        .unwrap();
    assert_eq!(status.get(&ExecutionStatus::Queued), Some(&1));

    let counts = store
        .delete_user(&victim.user_id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counts.executions, 1);
    assert_eq!(counts.sagas, 1);
    // The request event (from `create`) and the result event of the user's execution.
    assert_eq!(counts.events, 2);
    assert_eq!(store.user_by_id(&victim.user_id).await.unwrap(), None);
    assert_eq!(store.execution(&mine.execution_id).await.unwrap(), None);
    assert!(store
        .saga_for_execution(&mine.execution_id)
        .await
        .unwrap()
        .is_none());
    assert!(
        !store.release(&mine.execution_id).await.unwrap(),
        "queue entry removed"
    );
    assert!(store
        .events_for_aggregate(&mine.execution_id, &[], 0)
        .await
        .unwrap()
        .is_empty());

    // The other user's data is untouched.
    assert!(store
        .execution(&theirs.execution_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .saga_for_execution(&theirs.execution_id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .events_for_aggregate(&theirs.execution_id, &[], 0)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        store.delete_user(&victim.user_id, true).await.unwrap(),
        None
    );
    let plain = store
        .delete_user(&other.user_id, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        plain,
        Default::default(),
        "no cascade: nothing else deleted"
    );
    assert!(store
        .execution(&theirs.execution_id)
        .await
        .unwrap()
        .is_some());
}

fn user_event(user: &str, kind: EventType, at: DateTime<Utc>, service: &str) -> Envelope {
    let mut env = small_event(kind, &format!("exec-of-{user}"));
    env.metadata.user_id = Some(user.to_owned());
    env.metadata.service_name = service.to_owned();
    env.timestamp = at;
    env
}

pub async fn event_queries_filter_page_and_archive(store: S) {
    let now = crate::now();
    let mut stored = Vec::new();
    for i in 0..5 {
        let user = if i % 2 == 0 { "u-even" } else { "u-odd" };
        let kind = if i == 4 {
            EventType::ResultStored
        } else {
            EventType::ExecutionQueued
        };
        let env = user_event(user, kind, now - Duration::seconds(10 - i), "svc-a");
        stored.push(store.append_event(&env).await.unwrap());
    }
    let all = EventQuery::default();
    let page = store.query_events(&all, None, 0, 0).await.unwrap();
    let seqs: Vec<_> = page.iter().map(|e| e.seq).collect();
    let mut expected: Vec<_> = stored.iter().map(|e| e.seq).collect();
    expected.reverse();
    assert_eq!(seqs, expected, "newest first");
    assert_eq!(store.count_events(&all).await.unwrap(), 5);

    let by_user = EventQuery {
        user_id: Some("u-even".to_owned()),
        ..EventQuery::default()
    };
    assert_eq!(store.count_events(&by_user).await.unwrap(), 3);
    let by_type = EventQuery {
        event_types: vec![EventType::ResultStored],
        ..EventQuery::default()
    };
    assert_eq!(
        store.query_events(&by_type, None, 0, 10).await.unwrap(),
        vec![stored[4].clone()]
    );
    let text = EventQuery {
        search_text: Some("RESULT_stored".to_owned()),
        ..EventQuery::default()
    };
    assert_eq!(store.count_events(&text).await.unwrap(), 1);
    let body_text = EventQuery {
        search_text: Some("exec-of-u-odd".to_owned()),
        ..EventQuery::default()
    };
    assert_eq!(store.count_events(&body_text).await.unwrap(), 2);
    let wildcard = EventQuery {
        search_text: Some("%".to_owned()),
        ..EventQuery::default()
    };
    assert_eq!(
        store.count_events(&wildcard).await.unwrap(),
        0,
        "`%` is literal"
    );
    let service = EventQuery {
        service_name: Some("svc-a".to_owned()),
        ..EventQuery::default()
    };
    assert_eq!(store.count_events(&service).await.unwrap(), 5);
    let window = EventQuery {
        start_time: Some(stored[1].envelope.timestamp),
        end_time: Some(stored[3].envelope.timestamp),
        ..EventQuery::default()
    };
    assert_eq!(
        store.count_events(&window).await.unwrap(),
        3,
        "bounds are inclusive"
    );

    // Keyset paging visits every event once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<EventCursor> = None;
    loop {
        let chunk = store
            .query_events(&all, cursor.as_ref(), 0, 2)
            .await
            .unwrap();
        let Some(last) = chunk.last() else { break };
        cursor = Some(EventCursor::after(last));
        seen.extend(chunk.iter().map(|e| e.seq));
    }
    assert_eq!(seen, expected);
    let skipped = store.query_events(&all, None, 3, 10).await.unwrap();
    assert_eq!(skipped.len(), 2);

    let target = &stored[2].envelope.event_id;
    assert_eq!(
        store.event_by_id(target).await.unwrap(),
        Some(stored[2].clone())
    );
    assert!(store
        .archive_and_delete_event(target, "admin@example.com")
        .await
        .unwrap());
    assert_eq!(store.event_by_id(target).await.unwrap(), None);
    assert_eq!(store.archived_event_count(target).await.unwrap(), 1);
    assert!(!store
        .archive_and_delete_event(target, "admin@example.com")
        .await
        .unwrap());
    assert_eq!(store.count_events(&all).await.unwrap(), 4);
}

pub async fn event_stats_cover_the_window(store: S) {
    let now = crate::now();
    let old = user_event(
        "u1",
        EventType::ExecutionQueued,
        now - Duration::hours(30),
        "svc",
    );
    store.append_event(&old).await.unwrap();
    for (user, kind) in [
        ("u1", EventType::ExecutionQueued),
        ("u1", EventType::ResultStored),
        ("u2", EventType::ExecutionQueued),
    ] {
        store
            .append_event(&user_event(user, kind, now - Duration::minutes(5), "svc"))
            .await
            .unwrap();
    }
    let mut failed = user_event("u2", EventType::ExecutionQueued, now, "svc");
    failed.payload = EventPayload::ResultFailed {
        execution_id: "x".to_owned(),
        storage_type: None,
        error: None,
    };
    store.append_event(&failed).await.unwrap();

    let stats = store
        .event_stats(now - Duration::hours(24), None)
        .await
        .unwrap();
    assert_eq!(stats.total_events, 4, "the 30 h old event is outside");
    assert_eq!(stats.events_by_type[0], ("execution_queued".to_owned(), 2));
    assert_eq!(stats.error_rate, 25.0);
    assert_eq!(stats.events_by_service, vec![("svc".to_owned(), 4)]);
    let users: HashSet<_> = stats.top_users.iter().cloned().collect();
    assert_eq!(
        users,
        HashSet::from([("u1".to_owned(), 2), ("u2".to_owned(), 2)])
    );
    let hours: u64 = stats.events_by_hour.iter().map(|(_, n)| n).sum();
    assert_eq!(hours, 4);
    assert!(stats
        .events_by_hour
        .iter()
        .all(|(h, _)| h.len() == 16 && h.ends_with(":00")));

    let mine = store
        .event_stats(now - Duration::hours(24), Some("u1"))
        .await
        .unwrap();
    assert_eq!(mine.total_events, 2);
    assert_eq!(mine.error_rate, 0.0);
    let empty = store
        .event_stats(now + Duration::hours(1), None)
        .await
        .unwrap();
    assert_eq!(empty, Default::default());
}
