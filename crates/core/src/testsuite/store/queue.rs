//! The execution queue: idempotent enqueue, caps, priority, ageing, positions and concurrent claims.

use super::*;

pub async fn queue_enqueue_is_idempotent_and_release_frees(store: S) {
    let p = policy(10, 10, 0);
    let a = entry("u1", Priority::Normal, crate::now());
    let b = entry("u1", Priority::Normal, crate::now());
    assert!(store.enqueue(&a).await.unwrap());
    assert!(!store.enqueue(&a).await.unwrap());
    assert!(store.enqueue(&b).await.unwrap());
    assert_eq!(store.queue_counts().await.unwrap(), (2, 0));

    let now = crate::now();
    let claimed = store.claim_next(&p, now).await.unwrap().unwrap();
    assert_eq!(claimed.execution_id, a.execution_id);
    assert_eq!(claimed.active_since, Some(now));
    assert_eq!(store.queue_counts().await.unwrap(), (1, 1));
    assert!(
        !store.remove_pending(&a.execution_id).await.unwrap(),
        "active is not pending"
    );
    assert!(
        !store.enqueue(&a).await.unwrap(),
        "an active entry is not queued twice"
    );

    assert!(store.release(&a.execution_id).await.unwrap());
    assert!(!store.release(&a.execution_id).await.unwrap());
    assert!(store.remove_pending(&b.execution_id).await.unwrap());
    assert!(!store.remove_pending(&b.execution_id).await.unwrap());
    assert_eq!(store.queue_counts().await.unwrap(), (0, 0));
    assert_eq!(store.claim_next(&p, crate::now()).await.unwrap(), None);
}

pub async fn queue_claim_respects_caps(store: S) {
    let t0 = crate::now() - Duration::seconds(10);
    let a = entry("u1", Priority::Normal, t0);
    let b = entry("u1", Priority::Normal, t0 + Duration::seconds(1));
    let c = entry("u2", Priority::Normal, t0 + Duration::seconds(2));
    let d = entry("u3", Priority::Normal, t0 + Duration::seconds(3));
    for e in [&a, &b, &c, &d] {
        store.enqueue(e).await.unwrap();
    }
    let p = policy(2, 1, 0);
    let now = crate::now();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(a.execution_id.clone())
    );
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(c.execution_id.clone()),
        "u1 is at its cap"
    );
    assert_eq!(claim_id(&store, &p, now).await, None, "global cap reached");
    store.release(&a.execution_id).await.unwrap();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(d.execution_id.clone()),
        "u3 was never served, u1 was"
    );
    assert_eq!(store.queue_counts().await.unwrap(), (1, 2));
    let wide = policy(10, 1, 0);
    assert_eq!(
        claim_id(&store, &wide, now).await,
        Some(b.execution_id.clone())
    );
    assert_eq!(claim_id(&store, &wide, now).await, None);
}

pub async fn queue_claims_by_priority(store: S) {
    let t0 = crate::now() - Duration::seconds(5);
    let order = [
        Priority::Background,
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];
    let mut entries = Vec::new();
    for (i, priority) in order.into_iter().enumerate() {
        let e = entry(
            &format!("u{i}"),
            priority,
            t0 + Duration::milliseconds(i as i64),
        );
        store.enqueue(&e).await.unwrap();
        entries.push(e);
    }
    let same_rank_older = entry("u9", Priority::High, t0 - Duration::seconds(1));
    store.enqueue(&same_rank_older).await.unwrap();
    let p = policy(100, 100, 0);
    let now = crate::now();
    let mut claimed = Vec::new();
    while let Some(id) = claim_id(&store, &p, now).await {
        claimed.push(id);
    }
    let expected = vec![
        entries[4].execution_id.clone(),
        same_rank_older.execution_id.clone(),
        entries[3].execution_id.clone(),
        entries[2].execution_id.clone(),
        entries[1].execution_id.clone(),
        entries[0].execution_id.clone(),
    ];
    assert_eq!(claimed, expected);
}

pub async fn queue_ageing_lets_old_low_priority_win(store: S) {
    let now = crate::now();
    let old_low = entry("u1", Priority::Low, now - Duration::seconds(100));
    let new_high = entry("u2", Priority::High, now - Duration::seconds(1));
    store.enqueue(&old_low).await.unwrap();
    store.enqueue(&new_high).await.unwrap();
    // Without enough ageing, priority decides.
    let slow = policy(10, 10, 1000);
    assert_eq!(
        store
            .queue_position(&new_high.execution_id, &slow, now)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store
            .queue_position(&old_low.execution_id, &slow, now)
            .await
            .unwrap(),
        Some(1)
    );
    // Low (rank 3) waited 100 s: minus 3 levels at 30 s each, so it beats high (rank 1).
    let fast = policy(10, 10, 30);
    assert_eq!(
        store
            .queue_position(&old_low.execution_id, &fast, now)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        claim_id(&store, &fast, now).await,
        Some(old_low.execution_id.clone())
    );
    assert_eq!(
        claim_id(&store, &fast, now).await,
        Some(new_high.execution_id.clone())
    );
}

pub async fn queue_positions_follow_claim_order(store: S) {
    let t0 = crate::now() - Duration::seconds(5);
    let a = entry("u1", Priority::Normal, t0);
    let b = entry("u2", Priority::Normal, t0 + Duration::seconds(1));
    let c = entry("u3", Priority::Low, t0 - Duration::seconds(1));
    for e in [&a, &b, &c] {
        store.enqueue(e).await.unwrap();
    }
    let p = policy(10, 10, 0);
    let now = crate::now();
    let pos = |id: String| {
        let store = store.clone();
        async move { store.queue_position(&id, &p, now).await.unwrap() }
    };
    assert_eq!(pos(a.execution_id.clone()).await, Some(0));
    assert_eq!(pos(b.execution_id.clone()).await, Some(1));
    assert_eq!(pos(c.execution_id.clone()).await, Some(2));
    assert_eq!(pos("missing".to_owned()).await, None);

    assert!(store
        .set_priority(&c.execution_id, Priority::Critical)
        .await
        .unwrap());
    assert!(!store
        .set_priority("missing", Priority::Critical)
        .await
        .unwrap());
    assert_eq!(pos(c.execution_id.clone()).await, Some(0));
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(c.execution_id.clone())
    );
    assert_eq!(
        pos(c.execution_id.clone()).await,
        None,
        "an active entry has no position"
    );
    assert_eq!(pos(a.execution_id.clone()).await, Some(0));
}

pub async fn queue_concurrent_claims_never_share_an_entry(store: S) {
    let now = crate::now();
    let mut all = HashSet::new();
    for i in 0..24 {
        let e = entry(
            &format!("u{i}"),
            Priority::Normal,
            now - Duration::milliseconds(i),
        );
        store.enqueue(&e).await.unwrap();
        all.insert(e.execution_id);
    }
    let capped = policy(5, 1, 0);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { claim_id(&store, &capped, now).await },
        ));
    }
    let mut first_round = Vec::new();
    for t in tasks {
        first_round.extend(t.await.unwrap());
    }
    assert_eq!(first_round.len(), 5, "max_active holds under concurrency");

    let open = policy(1000, 1000, 0);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(id) = claim_id(&store, &open, now).await {
                mine.push(id);
            }
            mine
        }));
    }
    let mut claimed = first_round;
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(unique.len(), claimed.len(), "an entry was claimed twice");
    assert_eq!(unique, all);
}

/// Fair share: at equal priority the next claim goes to the user served longest ago (or
/// never), not to the oldest entry of a backlog.
pub async fn queue_equal_priorities_take_turns_between_users(store: S) {
    let t0 = crate::now() - Duration::seconds(60);
    let backlog: Vec<QueueEntry> = (0..5)
        .map(|i| entry("busy", Priority::Normal, t0 + Duration::seconds(i)))
        .collect();
    for e in &backlog {
        store.enqueue(e).await.unwrap();
    }
    let p = policy(1, 1, 0);
    let now = crate::now();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(backlog[0].execution_id.clone())
    );
    let late = entry("late", Priority::Normal, now);
    store.enqueue(&late).await.unwrap();
    assert_eq!(
        store
            .queue_position(&late.execution_id, &p, now)
            .await
            .unwrap(),
        Some(0),
        "the user never served is next"
    );
    assert_eq!(
        store
            .queue_position(&backlog[1].execution_id, &p, now)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        claim_id(&store, &p, now).await,
        None,
        "the one slot is taken"
    );
    store.release(&backlog[0].execution_id).await.unwrap();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(late.execution_id.clone()),
        "the newcomer goes before the rest of the backlog"
    );
    store.release(&late.execution_id).await.unwrap();

    // Two backlogs alternate.
    let other: Vec<QueueEntry> = (0..2)
        .map(|i| entry("late", Priority::Normal, now + Duration::milliseconds(i)))
        .collect();
    for e in &other {
        store.enqueue(e).await.unwrap();
    }
    let mut users = Vec::new();
    for _ in 0..4 {
        let claimed = store.claim_next(&p, now).await.unwrap().unwrap();
        users.push(claimed.user_id.clone());
        store.release(&claimed.execution_id).await.unwrap();
    }
    assert_eq!(users, ["busy", "late", "busy", "late"]);

    // Priority still comes first.
    let urgent = entry("late", Priority::High, now);
    store.enqueue(&urgent).await.unwrap();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(urgent.execution_id.clone())
    );
}

/// A backlog does not gather age while its user is being served: a newcomer of the same
/// priority is not overtaken by entries that aged behind the user's own running work.
pub async fn queue_backlog_does_not_age_while_its_user_is_served(store: S) {
    let now = crate::now();
    let backlog: Vec<QueueEntry> = (0..3)
        .map(|i| entry("busy", Priority::Normal, now - Duration::seconds(600 - i)))
        .collect();
    for e in &backlog {
        store.enqueue(e).await.unwrap();
    }
    let p = policy(1, 1, 1);
    let first = store.claim_next(&p, now).await.unwrap().unwrap();
    assert_eq!(first.execution_id, backlog[0].execution_id);
    let newcomer = entry("new", Priority::Normal, now);
    store.enqueue(&newcomer).await.unwrap();
    store.release(&first.execution_id).await.unwrap();
    let later = now + Duration::seconds(3);
    assert_eq!(
        claim_id(&store, &p, later).await,
        Some(newcomer.execution_id.clone()),
        "the backlog's age counts from its user's last claim"
    );
}

/// The active count breaks ties first: a user with fewer running entries goes next.
pub async fn queue_fewer_active_entries_go_first(store: S) {
    let t0 = crate::now() - Duration::seconds(30);
    let a: Vec<QueueEntry> = (0..3)
        .map(|i| entry("a", Priority::Normal, t0 + Duration::seconds(i)))
        .collect();
    for e in &a {
        store.enqueue(e).await.unwrap();
    }
    let p = policy(3, 3, 0);
    let now = crate::now();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(a[0].execution_id.clone())
    );
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(a[1].execution_id.clone())
    );
    let b = entry("b", Priority::Normal, now);
    store.enqueue(&b).await.unwrap();
    assert_eq!(
        claim_id(&store, &p, now).await,
        Some(b.execution_id.clone()),
        "b runs nothing, a runs two"
    );
}
