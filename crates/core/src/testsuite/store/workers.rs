//! Worker leases and run ownership: leases expire and are pruned, runs are claimed and fenced
//! by their owner, lost runs are settled once; stale queue claims are handed back once.

use super::*;
use crate::ports::{ExecutorHealth, OwnedRun, RuntimeReport, WorkerReport};

fn report(worker_id: &str, ready: bool) -> WorkerReport {
    WorkerReport {
        worker_id: worker_id.to_owned(),
        runtimes: vec![RuntimeReport {
            lang: "python".to_owned(),
            versions: vec!["3.11".to_owned(), "3.12".to_owned()],
        }],
        executor: ExecutorHealth {
            ready,
            mode: "test".to_owned(),
            detail: (!ready).then(|| "not ready".to_owned()),
        },
    }
}

fn failure(execution_id: &str) -> Envelope {
    small_event(EventType::ResultStored, execution_id)
}

/// A `scheduled` execution.
async fn scheduled(store: &S, user: &str) -> String {
    let e = create(store, &sample_execution(user, "python", Duration::zero())).await;
    assert!(store
        .transition_execution(
            &e.execution_id,
            &[ExecutionStatus::Queued],
            ExecutionStatus::Scheduled
        )
        .await
        .unwrap());
    e.execution_id
}

pub async fn workers_leases_renew_expire_and_prune(store: S) {
    let t0 = crate::now();
    store
        .renew_lease(&report("w-a", true), t0, t0 + Duration::seconds(6))
        .await
        .unwrap();
    store
        .renew_lease(
            &report("w-b", false),
            t0 + Duration::seconds(1),
            t0 + Duration::seconds(3),
        )
        .await
        .unwrap();
    let live = store.live_workers(t0 + Duration::seconds(2)).await.unwrap();
    let ids: Vec<&str> = live.iter().map(|l| l.report.worker_id.as_str()).collect();
    assert_eq!(ids, ["w-a", "w-b"], "oldest first");
    assert_eq!(live[0].report, report("w-a", true));
    assert_eq!(live[1].report, report("w-b", false));
    assert_eq!(live[0].started_at, t0);

    let later = t0 + Duration::seconds(4);
    let live = store.live_workers(later).await.unwrap();
    assert_eq!(live.len(), 1, "w-b expired");
    // A renewal keeps the start, moves the expiry and replaces the report.
    store
        .renew_lease(&report("w-a", false), later, later + Duration::seconds(6))
        .await
        .unwrap();
    let live = store.live_workers(later).await.unwrap();
    assert_eq!(live[0].started_at, t0);
    assert_eq!(live[0].renewed_at, later);
    assert_eq!(live[0].expires_at, later + Duration::seconds(6));
    assert!(!live[0].report.executor.ready);

    assert_eq!(store.prune_leases(later).await.unwrap(), 1, "w-b pruned");
    assert_eq!(store.prune_leases(later).await.unwrap(), 0);
    assert!(store.drop_lease("w-a").await.unwrap());
    assert!(!store.drop_lease("w-a").await.unwrap());
    assert!(store.live_workers(later).await.unwrap().is_empty());
}

pub async fn workers_claim_run_records_owner_and_fences_start(store: S) {
    let id = scheduled(&store, "u1").await;
    assert!(store.claim_run(&id, "w-a").await.unwrap());
    assert!(
        !store.claim_run(&id, "w-b").await.unwrap(),
        "a run is claimed once"
    );
    let e = store.execution(&id).await.unwrap().unwrap();
    assert_eq!(e.status, ExecutionStatus::Running);
    let owned = store.runs_of("w-a").await.unwrap();
    assert_eq!(
        owned,
        [OwnedRun {
            execution_id: id.clone(),
            user_id: "u1".to_owned(),
            worker_id: "w-a".to_owned(),
            started: false,
        }]
    );
    assert!(store.runs_of("w-b").await.unwrap().is_empty());
    assert!(
        !store.mark_run_started(&id, "w-b").await.unwrap(),
        "only the owner starts the run"
    );
    assert!(store.mark_run_started(&id, "w-a").await.unwrap());
    assert!(
        !store.mark_run_started(&id, "w-a").await.unwrap(),
        "started once"
    );
    assert!(store.runs_of("w-a").await.unwrap()[0].started);
    // An ended execution is nobody's running run.
    let record = ExecutionResultRecord {
        status: ExecutionStatus::Completed,
        stdout: String::new(),
        stderr: String::new(),
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        resource_usage: None,
    };
    assert!(store.finish_execution(&id, &record).await.unwrap());
    assert!(store.runs_of("w-a").await.unwrap().is_empty());
}

pub async fn workers_lost_runs_are_settled_once(store: S) {
    let now = crate::now();
    store
        .renew_lease(&report("alive", true), now, now + Duration::seconds(60))
        .await
        .unwrap();
    let of_alive = scheduled(&store, "u1").await;
    assert!(store.claim_run(&of_alive, "alive").await.unwrap());
    let never_started = scheduled(&store, "u1").await;
    assert!(store.claim_run(&never_started, "dead").await.unwrap());
    let started = scheduled(&store, "u2").await;
    assert!(store.claim_run(&started, "dead").await.unwrap());
    assert!(store.mark_run_started(&started, "dead").await.unwrap());

    let lost = store.lost_runs(now, 100).await.unwrap();
    let mut ids: Vec<&str> = lost.iter().map(|r| r.execution_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = [never_started.as_str(), started.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "runs of workers without a live lease");
    assert_eq!(store.lost_runs(now, 1).await.unwrap().len(), 1, "limit");

    for run in &lost {
        // Two settlers race; exactly one stores its event.
        let (first, second) = (failure(&run.execution_id), failure(&run.execution_id));
        let (a, b) = tokio::join!(
            store.settle_run(run, &first),
            store.settle_run(run, &second),
        );
        let stored = [a.unwrap(), b.unwrap()];
        assert_eq!(
            stored.iter().filter(|s| s.is_some()).count(),
            1,
            "settled once: {run:?}"
        );
        assert!(store
            .settle_run(run, &failure(&run.execution_id))
            .await
            .unwrap()
            .is_none());
        let events = store
            .events_for_aggregate(&run.execution_id, &[EventType::ResultStored], 10)
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
    }
    let status = |id: String| {
        let store = store.clone();
        async move { store.execution(&id).await.unwrap().unwrap().status }
    };
    assert_eq!(
        status(never_started.clone()).await,
        ExecutionStatus::Scheduled,
        "a run that never started is scheduled again"
    );
    assert_eq!(
        status(started.clone()).await,
        ExecutionStatus::Running,
        "a started run waits for its outcome event"
    );
    assert!(store.lost_runs(now, 100).await.unwrap().is_empty());
    assert!(store.runs_of("dead").await.unwrap().is_empty());
    // The rescheduled run can be claimed again, by a live worker.
    assert!(store.claim_run(&never_started, "alive").await.unwrap());
    assert_eq!(store.runs_of("alive").await.unwrap().len(), 2);

    // A settle that read the run before it was marked started does not match it any more.
    let racing = scheduled(&store, "u3").await;
    assert!(store.claim_run(&racing, "gone").await.unwrap());
    let read = store.lost_runs(now, 100).await.unwrap().remove(0);
    assert!(!read.started);
    assert!(store.mark_run_started(&racing, "gone").await.unwrap());
    assert!(store
        .settle_run(&read, &failure(&racing))
        .await
        .unwrap()
        .is_none());
    assert_eq!(status(racing.clone()).await, ExecutionStatus::Running);
    // Once the lease of the owner expires, its runs are lost.
    let later = now + Duration::seconds(61);
    assert_eq!(store.lost_runs(later, 100).await.unwrap().len(), 3);
}

pub async fn workers_outcome_and_lost_run_settlement_exclude_each_other(store: S) {
    let now = crate::now();
    let outcome = |id: &str| {
        vec![
            small_event(EventType::ResultStored, id),
            small_event(EventType::ExecutionQueued, id),
        ]
    };
    let ends = |id: String| {
        let store = store.clone();
        async move {
            store
                .events_for_aggregate(&id, &[EventType::ResultStored], 10)
                .await
                .unwrap()
                .len()
        }
    };

    // The owner reports first: the settlement of the run as lost finds nothing to settle.
    let reported = scheduled(&store, "u1").await;
    assert!(store.claim_run(&reported, "w-a").await.unwrap());
    assert!(store.mark_run_started(&reported, "w-a").await.unwrap());
    let read = store.lost_runs(now, 100).await.unwrap();
    assert_eq!(read.len(), 1, "the owner holds no lease");
    let stored = store
        .report_run(&reported, "w-a", &outcome(&reported))
        .await
        .unwrap()
        .expect("the owner's outcome is stored");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].envelope.event_type(), EventType::ResultStored);
    assert!(stored[0].seq < stored[1].seq, "in order");
    assert!(
        store.lost_runs(now, 100).await.unwrap().is_empty(),
        "a reported run is not lost"
    );
    assert!(store.runs_of("w-a").await.unwrap().is_empty());
    assert!(store
        .settle_run(&read[0], &failure(&reported))
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .report_run(&reported, "w-a", &outcome(&reported))
            .await
            .unwrap()
            .is_none(),
        "reported once"
    );
    assert_eq!(ends(reported.clone()).await, 1);
    assert_eq!(
        store.execution(&reported).await.unwrap().unwrap().status,
        ExecutionStatus::Running,
        "the outcome event ends the execution, not the report"
    );

    // The run is settled as lost first: its owner's late outcome is not stored.
    let settled = scheduled(&store, "u1").await;
    assert!(store.claim_run(&settled, "w-b").await.unwrap());
    assert!(store.mark_run_started(&settled, "w-b").await.unwrap());
    let lost = store.lost_runs(now, 100).await.unwrap().remove(0);
    assert!(store
        .settle_run(&lost, &failure(&settled))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .report_run(&settled, "w-b", &outcome(&settled))
        .await
        .unwrap()
        .is_none());
    assert_eq!(ends(settled.clone()).await, 1);

    // Racing: exactly one of them is stored.
    let racing = scheduled(&store, "u2").await;
    assert!(store.claim_run(&racing, "w-c").await.unwrap());
    assert!(store.mark_run_started(&racing, "w-c").await.unwrap());
    let lost = store.lost_runs(now, 100).await.unwrap().remove(0);
    let events = outcome(&racing);
    let settlement = failure(&racing);
    let (a, b) = tokio::join!(
        store.report_run(&racing, "w-c", &events),
        store.settle_run(&lost, &settlement),
    );
    assert!(a.unwrap().is_some() ^ b.unwrap().is_some(), "one end");
    assert_eq!(ends(racing.clone()).await, 1);

    // Only the owner reports.
    let other = scheduled(&store, "u2").await;
    assert!(store.claim_run(&other, "w-d").await.unwrap());
    assert!(store
        .report_run(&other, "w-e", &outcome(&other))
        .await
        .unwrap()
        .is_none());
    assert_eq!(ends(other).await, 0);
}

pub async fn queue_stale_claims_are_handed_back_once(store: S) {
    let t0 = crate::now() - Duration::seconds(120);
    let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let mut q = entry("u1", Priority::Normal, t0);
    q.execution_id = e.execution_id.clone();
    store.enqueue(&q).await.unwrap();
    let p = policy(1, 1, 0);
    let claimed = store.claim_next(&p, t0).await.unwrap().unwrap();
    let claimed_at = claimed.active_since.unwrap();

    assert!(
        store.stale_claims(t0).await.unwrap().is_empty(),
        "not older than the cutoff"
    );
    let stale = store.stale_claims(crate::now()).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].execution_id, e.execution_id);
    assert_eq!(stale[0].active_since, Some(claimed_at));

    let (a, b) = tokio::join!(
        store.requeue_claim(&e.execution_id, claimed_at),
        store.requeue_claim(&e.execution_id, claimed_at),
    );
    assert!(a.unwrap() ^ b.unwrap(), "handed back once");
    assert_eq!(store.queue_counts().await.unwrap(), (1, 0));
    // A newer claim is not the stale one.
    let again = store.claim_next(&p, crate::now()).await.unwrap().unwrap();
    assert!(!store
        .requeue_claim(&e.execution_id, claimed_at)
        .await
        .unwrap());
    assert_eq!(store.queue_counts().await.unwrap(), (0, 1));
    // A claim whose execution moved on is not stale: it holds the execution's slot.
    assert!(store
        .transition_execution(
            &e.execution_id,
            &[ExecutionStatus::Queued],
            ExecutionStatus::Scheduled
        )
        .await
        .unwrap());
    let later = again.active_since.unwrap() + Duration::seconds(1);
    assert!(store.stale_claims(later).await.unwrap().is_empty());
}

/// Scheduling is fenced by the claim: a dispatch whose claim was handed back (and taken again)
/// while it stalled changes nothing, and the claim that schedules keeps its slot against a late
/// hand-back of the same claim.
pub async fn queue_schedule_is_fenced_by_the_claim(store: S) {
    use crate::ports::ScheduleClaim;
    let t0 = crate::now() - Duration::seconds(120);
    let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
    let id = e.execution_id.as_str();
    let mut q = entry("u1", Priority::Normal, t0);
    q.execution_id = e.execution_id.clone();
    store.enqueue(&q).await.unwrap();
    let p = policy(1, 1, 0);
    let stalled = store.claim_next(&p, t0).await.unwrap().unwrap();
    let stalled_at = stalled.active_since.unwrap();
    let status = |store: S| async move { store.execution(id).await.unwrap().unwrap().status };

    // Handed back as stale: the stalled dispatch can no longer schedule.
    assert!(store.requeue_claim(id, stalled_at).await.unwrap());
    assert_eq!(
        store.schedule_claimed(id, stalled_at).await.unwrap(),
        ScheduleClaim::ClaimLost
    );
    assert_eq!(status(store.clone()).await, ExecutionStatus::Queued);
    assert_eq!(store.queue_counts().await.unwrap(), (1, 0), "still pending");

    // Claimed again by another dispatch: the stalled one still cannot schedule, nor free it.
    let current = store.claim_next(&p, crate::now()).await.unwrap().unwrap();
    let current_at = current.active_since.unwrap();
    assert_ne!(current_at, stalled_at);
    assert_eq!(
        store.schedule_claimed(id, stalled_at).await.unwrap(),
        ScheduleClaim::ClaimLost
    );
    assert_eq!(status(store.clone()).await, ExecutionStatus::Queued);
    assert_eq!(store.queue_counts().await.unwrap(), (0, 1));

    // The current claim schedules, once; its slot stays taken.
    assert_eq!(
        store.schedule_claimed(id, current_at).await.unwrap(),
        ScheduleClaim::Scheduled
    );
    assert_eq!(status(store.clone()).await, ExecutionStatus::Scheduled);
    assert_eq!(
        store.schedule_claimed(id, current_at).await.unwrap(),
        ScheduleClaim::ClaimLost,
        "the schedule consumed the claim"
    );
    assert!(
        !store.requeue_claim(id, current_at).await.unwrap(),
        "a late hand-back of the consumed claim does not free the slot"
    );
    assert_eq!(store.queue_counts().await.unwrap(), (0, 1));

    // A claim whose execution was cancelled meanwhile frees its slot instead.
    let f = create(&store, &sample_execution("u2", "python", Duration::zero())).await;
    let mut r = entry("u2", Priority::Normal, t0);
    r.execution_id = f.execution_id.clone();
    store.enqueue(&r).await.unwrap();
    let p = policy(2, 1, 0);
    let claimed = store.claim_next(&p, crate::now()).await.unwrap().unwrap();
    assert_eq!(claimed.execution_id, f.execution_id);
    assert!(store
        .transition_execution(
            &f.execution_id,
            &[ExecutionStatus::Queued],
            ExecutionStatus::Cancelled
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .schedule_claimed(&f.execution_id, claimed.active_since.unwrap())
            .await
            .unwrap(),
        ScheduleClaim::NotQueued
    );
    assert_eq!(store.queue_counts().await.unwrap(), (0, 1));
    let cancelled = store.execution(&f.execution_id).await.unwrap().unwrap();
    assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
}

/// Two dispatches scheduling the same claim at once: one schedules, the other finds the claim
/// consumed; and a hand-back racing the schedule never leaves a scheduled execution without
/// its slot.
pub async fn queue_schedule_and_hand_back_race_safely(store: S) {
    use crate::ports::ScheduleClaim;
    let p = policy(100, 100, 0);
    for _ in 0..10 {
        let e = create(&store, &sample_execution("u1", "python", Duration::zero())).await;
        let id = e.execution_id.clone();
        let mut q = entry("u1", Priority::Normal, crate::now());
        q.execution_id = id.clone();
        store.enqueue(&q).await.unwrap();
        let claimed = store.claim_next(&p, crate::now()).await.unwrap().unwrap();
        let at = claimed.active_since.unwrap();
        let (a, b, back) = tokio::join!(
            store.schedule_claimed(&id, at),
            store.schedule_claimed(&id, at),
            store.requeue_claim(&id, at),
        );
        let (a, b, back) = (a.unwrap(), b.unwrap(), back.unwrap());
        let scheduled = [a, b]
            .iter()
            .filter(|o| **o == ScheduleClaim::Scheduled)
            .count();
        let status = store.execution(&id).await.unwrap().unwrap().status;
        if back {
            // The hand-back went first: neither dispatch scheduled.
            assert_eq!(scheduled, 0, "{a:?} {b:?}");
            assert_eq!(status, ExecutionStatus::Queued);
            assert_eq!(store.queue_counts().await.unwrap(), (1, 0));
        } else {
            assert_eq!(scheduled, 1, "{a:?} {b:?}");
            assert_eq!(status, ExecutionStatus::Scheduled);
            assert_eq!(store.queue_counts().await.unwrap(), (0, 1));
        }
        store.release(&id).await.unwrap();
    }
}
