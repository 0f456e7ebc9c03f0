//! End to end: an execution goes through the real engine, the k8s worker creates its pod on the
//! fake API server, the kubelet runs it in the sandbox, the pod monitor reports it, the result
//! is stored and the pod and ConfigMap are deleted. Clients cannot tell the executors apart:
//! the same event types and payload shapes as the local worker's.

use std::collections::BTreeSet;
use std::time::Instant;

use integr8s_core::cancel::CancelOutcome;
use integr8s_core::event::{EventPayload, EventType};
use integr8s_core::execution::{ErrorType, ExecutionStatus, NO_EXIT_CODE};
use serde_json::Value;

use crate::harness::{sandbox, Stack};

const HELLO: &str = "import sys\nprint('hello from a pod')\nprint('to stderr', file=sys.stderr)\n";

/// The keys of each event's JSON, by event type (the shape clients see).
async fn shapes(stack: &Stack, id: &str) -> Vec<(EventType, BTreeSet<String>)> {
    let mut shapes: Vec<_> = stack
        .events(id)
        .await
        .iter()
        .map(|env| {
            let Value::Object(map) = serde_json::to_value(env).unwrap() else {
                panic!("an event is an object");
            };
            (env.event_type(), map.keys().cloned().collect())
        })
        .collect();
    shapes.sort();
    shapes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_runs_in_a_pod_and_is_reported_like_a_local_run() {
    let executor = sandbox().await;
    let k8s = Stack::k8s_over(executor.clone()).await;
    let id = k8s.submit(HELLO).await;
    let e = k8s.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.exit_code, Some(0));
    assert_eq!(e.stdout.as_deref(), Some("hello from a pod\n"));
    assert_eq!(e.stderr.as_deref(), Some("to stderr\n"));
    let usage = e
        .resource_usage
        .expect("usage from the termination message");
    assert!(usage.execution_time_wall_seconds > 0.0, "{usage:?}");
    assert!(usage.peak_memory_kb > 0, "{usage:?}");
    assert_eq!(usage.clk_tck_hertz, 100);
    k8s.wait_event(&id, EventType::PodDeleted).await;
    k8s.cluster_is_clean().await;

    let pod_created = k8s
        .events(&id)
        .await
        .into_iter()
        .find_map(|e| match e.payload {
            EventPayload::PodCreated {
                pod_name,
                namespace,
                ..
            } => Some((pod_name, namespace)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        pod_created,
        (format!("executor-{id}"), "integr8s-executor".to_owned())
    );

    let local = Stack::local(executor).await;
    let lid = local.submit(HELLO).await;
    let le = local.finished(&lid).await;
    assert_eq!(le.stdout, e.stdout);
    local.wait_event(&lid, EventType::PodDeleted).await;

    let mut k8s_types = k8s.event_types(&id).await;
    let mut local_types = local.event_types(&lid).await;
    k8s_types.sort();
    local_types.sort();
    assert_eq!(
        k8s_types, local_types,
        "the same events as the local worker"
    );
    assert_eq!(
        shapes(&k8s, &id).await,
        shapes(&local, &lid).await,
        "the same shapes"
    );
    local.stop().await;
    k8s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_input_timeouts_and_output_caps_map_like_locally() {
    let stack = Stack::k8s().await;
    let failing = stack.submit("raise SystemExit(4)\n").await;
    let echo = stack
        .submit_with(
            "import sys\nprint(sys.stdin.read().upper())\n",
            Some("shout\n"),
            5,
        )
        .await;
    let slow = stack
        .submit_with(
            "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
            None,
            1,
        )
        .await;
    let chatty = stack
        .submit("import sys\nsys.stdout.write('x' * (2 * 1024 * 1024))\n")
        .await;

    let e = stack.finished(&failing).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.exit_code, Some(4));
    assert_eq!(e.error_type, Some(ErrorType::ScriptError));

    let e = stack.finished(&echo).await;
    assert_eq!(e.stdout.as_deref(), Some("SHOUT\n\n"), "{e:?}");

    let e = stack.finished(&slow).await;
    assert_eq!(e.status, ExecutionStatus::Timeout, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::Timeout));
    assert_eq!(e.exit_code, Some(NO_EXIT_CODE));
    assert_eq!(
        e.stdout.as_deref(),
        Some("started\n"),
        "output up to the deadline is kept"
    );
    assert_eq!(stack.count(&slow, EventType::PodTerminated).await, 1);

    let e = stack.finished(&chatty).await;
    assert_eq!(e.status, ExecutionStatus::Failed, "{e:?}");
    assert_eq!(e.error_type, Some(ErrorType::ResourceLimit));
    let stdout = e.stdout.unwrap();
    assert!(stdout.ends_with("[output truncated: limit of 1048576 bytes reached]\n"));
    assert_eq!(
        stdout.len(),
        1024 * 1024 + "\n[output truncated: limit of 1048576 bytes reached]\n".len()
    );

    stack.cluster_is_clean().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_deletes_the_pod_at_once() {
    let stack = Stack::k8s().await;
    let id = stack
        .submit_with(
            "import time\nprint('up', flush=True)\ntime.sleep(600)\n",
            None,
            120,
        )
        .await;
    stack.wait_event(&id, EventType::ExecutionRunning).await;
    let started = Instant::now();
    assert!(matches!(
        stack.cancel(&id).await,
        CancelOutcome::Stopping { .. }
    ));
    let e = stack.finished(&id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled, "{e:?}");
    let cancelled = stack
        .events(&id)
        .await
        .into_iter()
        .find_map(|e| match e.payload {
            EventPayload::ExecutionCancelled {
                force_terminated,
                cancelled_by,
                ..
            } => Some((force_terminated, cancelled_by)),
            _ => None,
        })
        .unwrap();
    assert_eq!(cancelled, (true, "alice".to_owned()));
    assert_eq!(stack.count(&id, EventType::ExecutionCancelled).await, 1);
    stack.wait_event(&id, EventType::PodDeleted).await;
    stack.cluster_is_clean().await;
    eprintln!("cancel to cancelled: {:?}", started.elapsed());
    stack.stop().await;
}

/// Figures: the time the k8s path adds over the local executor on the fake cluster, and the
/// API calls one execution costs. Timings are printed, never asserted; call counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_time_added_and_api_calls_per_execution() {
    const RUNS: u64 = 9;
    let executor = sandbox().await;
    let local = Stack::local(executor.clone()).await;
    let k8s = Stack::k8s_over(executor).await;
    let mut local_ms = Vec::new();
    let mut k8s_ms = Vec::new();
    for _ in 0..RUNS {
        for (stack, times) in [(&local, &mut local_ms), (&k8s, &mut k8s_ms)] {
            let start = Instant::now();
            let id = stack.submit("print('hello')\n").await;
            let e = stack.finished(&id).await;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(e.stdout.as_deref(), Some("hello\n"));
            stack.wait_event(&id, EventType::PodDeleted).await;
        }
    }
    k8s.cluster_is_clean().await;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (l, k) = (median(&mut local_ms), median(&mut k8s_ms));
    eprintln!(
        "submit to result_stored, median of {RUNS}: local {l:.1} ms, k8s (fake cluster) {k:.1} ms, added {:.1} ms ({:.2}x)",
        k - l,
        k / l
    );
    let calls = k8s.cluster().calls();
    eprintln!("API calls for {RUNS} executions: {calls:?}");
    let per = |what: &str| calls.get(what).copied().unwrap_or(0);
    assert_eq!(per("create configmaps"), RUNS);
    assert_eq!(per("create pods"), RUNS);
    assert_eq!(per("log pods"), RUNS);
    assert_eq!(per("delete pods"), RUNS);
    assert_eq!(per("delete configmaps"), RUNS);
    // Added, scheduled, running, terminated, deleted.
    assert_eq!(per("watch-event pods"), 5 * RUNS);
    local.stop().await;
    k8s.stop().await;
}
