//! The coordinator admits runs by priority and never exceeds the global or per-user caps.

use std::collections::HashMap;
use std::sync::Arc;

use integr8s_core::event::EventType;
use integr8s_core::execution::{ExecutionStatus, Priority};

use crate::harness::{all_runtimes, config, eventually, Pipeline};
use crate::scripted::ScriptedExecutor;

#[tokio::test]
async fn waiting_executions_start_by_priority() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(1, 10), all_runtimes()).await;

    let blocker = p.submit("u0", "block", Priority::Normal).await;
    p.wait_status(&blocker, ExecutionStatus::Running).await;
    let mut waiting = Vec::new();
    for (i, priority) in [
        Priority::Low,
        Priority::Normal,
        Priority::Background,
        Priority::Critical,
        Priority::High,
    ]
    .into_iter()
    .enumerate()
    {
        let id = p.submit(&format!("u{}", i + 1), "block", priority).await;
        waiting.push((priority, id));
    }
    for (_, id) in &waiting {
        eventually("queued", || async {
            (p.count_events(id, EventType::ExecutionQueued).await == 1).then_some(())
        })
        .await;
    }
    executor.open_gate();
    for (_, id) in &waiting {
        assert_eq!(p.finished(id).await.status, ExecutionStatus::Completed);
    }

    waiting.sort_by_key(|(priority, _)| priority.rank());
    let mut expected = vec![blocker];
    expected.extend(waiting.into_iter().map(|(_, id)| id));
    assert_eq!(executor.started(), expected);
    p.stop().await;
}

#[tokio::test]
async fn runs_respect_the_global_and_per_user_caps() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Arc::new(ScriptedExecutor::new());
    let db = dir.path().join("engine.db");
    let p = Pipeline::start_with(&db, executor.clone(), config(3, 2), all_runtimes()).await;

    let mut owner = HashMap::new();
    for user in ["ann", "ann", "ann", "ann", "ben", "ben", "cat"] {
        let id = p.submit(user, "block", Priority::Normal).await;
        owner.insert(id, user);
    }
    // Three run (two of ann's at most); the rest wait for a slot.
    eventually("three runs", || async {
        (executor.live().len() == 3).then_some(())
    })
    .await;
    let running = p
        .store
        .executions_in(&[ExecutionStatus::Running])
        .await
        .unwrap();
    assert_eq!(running.len(), 3);
    // The coordinator admits the requests one after the other: the runs may start before the
    // last requests are in the queue.
    eventually("the others queued", || async {
        (p.store.queue_counts().await.unwrap() == (4, 3)).then_some(())
    })
    .await;

    executor.open_gate();
    for id in owner.keys() {
        assert_eq!(p.finished(id).await.status, ExecutionStatus::Completed);
        assert_eq!(executor.runs(id), 1);
    }
    for live in executor.snapshots() {
        assert!(live.len() <= 3, "{} concurrent runs", live.len());
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        for id in &live {
            *per_user.entry(owner[id]).or_default() += 1;
        }
        assert!(per_user.values().all(|n| *n <= 2), "{per_user:?}");
    }
    p.stop().await;
}
