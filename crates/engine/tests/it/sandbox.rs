//! The real pipeline with the real local sandbox running python3.

use std::sync::Arc;

use integr8s_core::execution::{ErrorType, ExecutionStatus, Priority};
use integr8s_core::ports::Executor;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

use crate::harness::{config, Pipeline};

#[tokio::test]
async fn python_scripts_run_in_the_sandbox_through_the_pipeline() {
    let executor = Arc::new(
        LocalExecutor::start(SandboxConfig {
            // Apart from the default range of a server that may run on this host.
            uid_base: 390_000,
            ..SandboxConfig::default()
        })
        .await,
    );
    let health = executor.health();
    assert!(health.ready, "sandbox not ready: {health:?}");
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::start(&dir.path().join("engine.db"), executor, config(2, 2)).await;

    let ok = p
        .submit(
            "alice",
            "import sys\nprint('hello from python')\nprint('to stderr', file=sys.stderr)\n",
            Priority::Normal,
        )
        .await;
    let failing = p
        .submit("alice", "raise SystemExit(4)\n", Priority::Normal)
        .await;

    let e = p.finished(&ok).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.exit_code, Some(0));
    assert_eq!(e.stdout.as_deref(), Some("hello from python\n"));
    assert_eq!(e.stderr.as_deref(), Some("to stderr\n"));
    let usage = e.resource_usage.unwrap();
    assert_eq!(usage.clk_tck_hertz, 100);
    assert!(usage.execution_time_wall_seconds > 0.0);

    let e = p.finished(&failing).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{e:?}");
    assert_eq!(e.exit_code, Some(4));
    assert_eq!(e.error_type, Some(ErrorType::ScriptError));

    // A long run is stopped by a cancel.
    let sleeper = p
        .submit("alice", "import time\ntime.sleep(600)\n", Priority::Normal)
        .await;
    p.wait_status(&sleeper, ExecutionStatus::Running).await;
    p.cancel(&sleeper, "alice").await;
    assert_eq!(
        p.finished(&sleeper).await.status,
        ExecutionStatus::Cancelled
    );
    p.stop().await;
}
