//! Restarts: the pod monitor killed mid-watch and the k8s worker killed mid-create, then new
//! instances started. No execution is lost, none is reported twice, no pod is left behind.

use integr8s_core::event::EventType;
use integr8s_core::execution::ExecutionStatus;

use crate::harness::{eventually, Stack};

const ONCE: &[EventType] = &[
    EventType::PodCreated,
    EventType::PodScheduled,
    EventType::ExecutionStarted,
    EventType::PodRunning,
    EventType::ExecutionRunning,
    EventType::ExecutionCompleted,
    EventType::PodSucceeded,
    EventType::PodDeleted,
    EventType::ResultStored,
];

async fn each_event_once(stack: &Stack, id: &str) {
    stack.wait_event(id, EventType::PodDeleted).await;
    for t in ONCE {
        assert_eq!(
            stack.count(id, *t).await,
            1,
            "{t} of {id}: {:?}",
            stack.event_types(id).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_killed_mid_watch_is_replaced_without_loss_or_duplicates() {
    let mut stack = Stack::k8s().await;
    // Two runs: one ends while no monitor watches, one is still running when the new one starts.
    let short = stack
        .submit("import time\nprint('short', flush=True)\ntime.sleep(1)\n")
        .await;
    let long = stack
        .submit("import time\nprint('long', flush=True)\ntime.sleep(4)\n")
        .await;
    stack.wait_event(&short, EventType::ExecutionRunning).await;
    stack.wait_event(&long, EventType::ExecutionRunning).await;
    stack.kill_monitor().await;
    let cluster = stack.cluster();
    let pod = format!("executor-{short}");
    eventually("the short pod to end unwatched", || async {
        cluster
            .pods()
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(pod.as_str()))
            .and_then(|p| p.status.as_ref()?.phase.clone())
            .filter(|phase| phase == "Succeeded")
    })
    .await;
    assert_eq!(stack.count(&short, EventType::ExecutionCompleted).await, 0);

    stack.start_monitor().await;
    for (id, out) in [(&short, "short\n"), (&long, "long\n")] {
        let e = stack.finished(id).await;
        assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
        assert_eq!(e.stdout.as_deref(), Some(out));
        each_event_once(&stack, id).await;
    }
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_while_no_monitor_watches_is_noticed_by_the_next() {
    let mut stack = Stack::k8s().await;
    let id = stack
        .submit_with("import time\ntime.sleep(60)\n", None, 120)
        .await;
    stack.wait_event(&id, EventType::ExecutionRunning).await;
    stack.kill_monitor().await;
    stack
        .cluster()
        .delete_pod_from_outside(crate::harness::NAMESPACE, &format!("executor-{id}"))
        .await;
    stack.start_monitor().await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error, "{e:?}");
    assert_eq!(stack.count(&id, EventType::ExecutionFailed).await, 1);
    stack.cluster_is_clean().await;
    stack.stop().await;
}

/// The worker dies while its pod create is in flight, and the API server completes the create
/// (`completes`) or never stores it; either way the next worker finishes the job once.
async fn worker_killed_mid_create(completes: bool) {
    let mut stack = Stack::k8s().await;
    let cluster = stack.cluster();
    cluster.hold_creates("pods");
    let id = stack.submit("print('survived')\n").await;
    eventually("the pod create in flight", || async {
        cluster.calls().get("create pods").map(|_| ())
    })
    .await;
    assert_eq!(
        cluster.config_maps().len(),
        1,
        "the ConfigMap was created first"
    );
    stack.kill_worker().await;
    stack.cluster().release_creates(completes);
    eventually("the held create to settle", || async {
        (stack.cluster().pods().len() == usize::from(completes)).then_some(())
    })
    .await;

    stack.start_worker().await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.stdout.as_deref(), Some("survived\n"));
    each_event_once(&stack, &id).await;
    assert_eq!(stack.cluster().calls()["create pods"], 2);
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_create_after_the_pod_was_stored_creates_nothing_new() {
    worker_killed_mid_create(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_create_before_the_pod_was_stored_creates_it_once() {
    worker_killed_mid_create(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_command_for_an_existing_pod_does_nothing_new() {
    let stack = Stack::k8s().await;
    let id = stack
        .submit_with(
            "import time\nprint('once', flush=True)\ntime.sleep(3)\n",
            None,
            30,
        )
        .await;
    stack.wait_event(&id, EventType::ExecutionRunning).await;
    let command = stack
        .events(&id)
        .await
        .into_iter()
        .find(|e| e.event_type() == EventType::CreatePodCommand)
        .unwrap();
    // The same command again (as a redelivery or a second saga pass would bring it).
    let again =
        integr8s_core::event::Envelope::new(command.payload.clone(), command.metadata.clone());
    stack.outbox.emit_envelope(&again).await.unwrap();
    let cluster = stack.cluster();
    eventually("the repeated command to meet the existing pod", || async {
        (cluster.calls().get("create pods") == Some(&2)).then_some(())
    })
    .await;
    let e = stack.finished(&id).await;
    assert_eq!(
        stack.execution(&id).await.status,
        ExecutionStatus::Completed
    );
    assert_eq!(e.stdout.as_deref(), Some("once\n"));
    each_event_once(&stack, &id).await;
    assert_eq!(stack.count(&id, EventType::CreatePodCommand).await, 2);
    stack.cluster_is_clean().await;
    stack.stop().await;
}
