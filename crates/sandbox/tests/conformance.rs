//! The executor port's conformance suite against the local sandbox.

use std::sync::Arc;

use integr8s_core::ports::Executor;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};
use tokio::sync::OnceCell;

/// Apart from every other test's range (slot uids are claimed per host).
const UID_BASE: u32 = 386_000;

static EXECUTOR: OnceCell<Arc<LocalExecutor>> = OnceCell::const_new();

/// One executor for the whole binary (two slots, so the concurrent case runs at once): each
/// case is a test of its own on a runtime of its own, and the executor's slots outlive them.
async fn executor() -> Arc<dyn Executor> {
    EXECUTOR
        .get_or_init(|| async {
            Arc::new(
                LocalExecutor::start(SandboxConfig {
                    uid_base: UID_BASE,
                    max_concurrent: 2,
                    ..SandboxConfig::default()
                })
                .await,
            )
        })
        .await
        .clone()
}

integr8s_core::executor_test_suite!(executor());
