//! Injected failures become the contract's failure events with a clear error type, and
//! nothing is left behind in the cluster: image pull errors, OOM kills, deadlines, evictions,
//! quota refusals, refused and failing API calls, watch expiry.

use std::sync::Arc;

use integr8s_core::event::EventType;
use integr8s_core::execution::{ErrorType, ExecutionStatus, NO_EXIT_CODE};
use integr8s_k8s::fake::{CallFault, PodFault};
use integr8s_k8s::{ImageRegistry, K8sConfig, K8sWorker, PodMonitor};

use crate::harness::{engine_config, Stack};

const QUICK: &str = "print('ok')\n";
const SLOW: &str = "import time\nprint('up', flush=True)\ntime.sleep(30)\n";

fn message(e: &integr8s_core::execution::Execution) -> String {
    e.error_message.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_failures_map_to_their_outcomes() {
    let stack = Stack::k8s().await;
    let cluster = stack.cluster();

    cluster.inject_pod_fault(PodFault::ImagePull);
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert!(
        message(&e).contains("image could not be pulled (ErrImagePull)"),
        "{e:?}"
    );
    stack.cluster_is_clean().await;

    cluster.inject_pod_fault(PodFault::OomKilled);
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::ResourceLimit));
    assert_eq!(e.exit_code, Some(137));
    assert!(message(&e).contains("out of memory"), "{e:?}");
    assert_eq!(stack.count(&id, EventType::PodFailed).await, 1);
    stack.cluster_is_clean().await;

    cluster.inject_pod_fault(PodFault::DeadlineExceeded);
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Timeout, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::Timeout));
    assert_eq!(e.exit_code, Some(NO_EXIT_CODE));
    stack.cluster_is_clean().await;

    cluster.inject_pod_fault(PodFault::Evicted);
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::ResourceLimit));
    assert!(message(&e).contains("evicted"), "{e:?}");
    stack.cluster_is_clean().await;

    // A real memory hog is stopped by the pod's memory limit.
    let id = stack
        .submit("chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n")
        .await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::ResourceLimit), "{e:?}");
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_failures_end_the_execution_and_leave_nothing_behind() {
    let stack = Stack::k8s().await;
    let cluster = stack.cluster();

    // Quota exceeded (403): the ConfigMap created first is deleted again.
    cluster.refuse_by_quota(1);
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::ResourceLimit));
    assert!(message(&e).contains("exceeded quota"), "{e:?}");
    assert_eq!(stack.count(&id, EventType::PodCreated).await, 0);
    stack.cluster_is_clean().await;

    // Invalid (422): standard input over the ConfigMap size limit.
    let big = "x".repeat(1024 * 1024 + 1);
    let id = stack.submit_with(QUICK, Some(&big), 5).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::SystemError));
    assert!(
        message(&e).contains("kubernetes refused the executor pod: 422"),
        "{e:?}"
    );
    stack.cluster_is_clean().await;

    // A passing outage (500 twice) is retried and the run completes.
    let before = cluster.calls().get("create pods").copied().unwrap_or(0);
    cluster.inject_call_fault(CallFault {
        verb: "create",
        resource: "pods",
        code: 500,
        times: 2,
    });
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.stdout.as_deref(), Some("ok\n"));
    assert_eq!(cluster.calls()["create pods"] - before, 3);
    assert_eq!(stack.count(&id, EventType::PodCreated).await, 1);
    stack.cluster_is_clean().await;

    // A lasting outage (503) ends the execution once the attempts are used up.
    cluster.inject_call_fault(CallFault {
        verb: "create",
        resource: "pods",
        code: 503,
        times: 100,
    });
    let id = stack.submit(QUICK).await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error, "{e:?}");
    assert!(
        message(&e).contains("the kubernetes API is unavailable"),
        "{e:?}"
    );
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_relists_without_duplicating_events() {
    let stack = Stack::k8s().await;
    let cluster = stack.cluster();
    let slow = stack
        .submit_with(SLOW.replace("30", "1").as_str(), None, 10)
        .await;
    stack.wait_event(&slow, EventType::ExecutionRunning).await;
    let lists = cluster.calls()["list pods"];
    cluster.expire_watches();
    let e = stack.finished(&slow).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.stdout.as_deref(), Some("up\n"));
    stack.wait_event(&slow, EventType::PodDeleted).await;
    assert!(
        cluster.calls()["list pods"] > lists,
        "the monitor listed again"
    );
    for t in [
        EventType::PodScheduled,
        EventType::PodRunning,
        EventType::ExecutionRunning,
        EventType::ExecutionCompleted,
        EventType::PodSucceeded,
        EventType::PodDeleted,
    ] {
        assert_eq!(stack.count(&slow, t).await, 1, "{t}");
    }
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_from_outside_ends_its_execution() {
    let stack = Stack::k8s().await;
    let id = stack.submit(SLOW).await;
    stack.wait_event(&id, EventType::ExecutionRunning).await;
    stack
        .cluster()
        .delete_pod_from_outside(crate::harness::NAMESPACE, &format!("executor-{id}"))
        .await;
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Error, "{e:?}");
    assert!(message(&e).contains("deleted outside integr8s"), "{e:?}");
    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test]
async fn the_default_namespace_is_refused() {
    let stack_less = K8sConfig {
        namespace: "default".to_owned(),
        connection: integr8s_k8s::Connection::Url("http://127.0.0.1:1".to_owned()),
        ..K8sConfig::default()
    };
    let client = stack_less.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let sqlite = Arc::new(integr8s_store::SqliteStore::open(&url).await.unwrap());
    sqlite.migrate().await.unwrap();
    let store: Arc<dyn integr8s_core::ports::Store> = sqlite.clone();
    let events: Arc<dyn integr8s_core::ports::BusLog> = sqlite;
    let bus: Arc<dyn integr8s_core::ports::EventBus> =
        Arc::new(integr8s_bus::MemoryBus::new(events.clone()));
    let outbox = integr8s_core::outbox::Outbox::new(events, bus.clone(), "test");
    let err = K8sWorker::new(
        client.clone(),
        stack_less.clone(),
        ImageRegistry::embedded(),
        store.clone(),
        bus,
        outbox.clone(),
        engine_config(),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("'default'"), "{err}");
    assert!(err.to_string().contains("k8s.namespace"), "{err}");
    assert!(PodMonitor::new(client, stack_less, store, outbox).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_pods_and_config_maps_are_swept() {
    use integr8s_k8s::manifest::pod::PodRequest;
    use integr8s_k8s::manifest::{build_config_map, build_pod, Origin};
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::{Api, PostParams};

    let stack = Stack::k8s().await;
    // Objects of an execution the store does not know (e.g. deleted by an admin while a
    // crash kept its cleanup from running).
    let id = integr8s_core::new_id();
    let runtime = ImageRegistry::embedded().resolve("python", "3.11").unwrap();
    let limits = integr8s_core::execution::RunLimits::default();
    let origin = Origin::default();
    let pod = build_pod(
        &stack.k8s,
        &PodRequest {
            execution_id: &id,
            runtime: &runtime,
            limits: &limits,
            cpu_request: "100m".to_owned(),
            cpu_limit: "1".to_owned(),
            memory_request_bytes: limits.memory_bytes,
            has_stdin: false,
            origin: &origin,
        },
    );
    let cm = build_config_map(
        &stack.k8s.namespace,
        &id,
        "python",
        "main.py",
        "import time\ntime.sleep(60)\n",
        None,
    );
    let client = stack.k8s.client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &stack.k8s.namespace);
    let cms: Api<ConfigMap> = Api::namespaced(client, &stack.k8s.namespace);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    stack.cluster_is_clean().await;
    assert!(stack.cluster().calls()["list pods"] >= 1);
    stack.stop().await;
}
