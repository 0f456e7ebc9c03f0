//! The k8s worker's lease: like a local worker, it renews a worker lease in the store every
//! heartbeat, reporting the languages and versions of its image registry and whether the
//! Kubernetes API answers, so that the API validates submissions (and answers readiness) from
//! what the cluster can run rather than from the interpreters of its own host.
//!
//! The k8s worker owns no runs (the pod monitor reports them and the pod outlives the worker),
//! so an expired lease settles nothing; it only stops counting for the API.

use std::sync::Arc;
use std::time::Duration;

use integr8s_core::ports::{ExecutorHealth, RuntimeReport, WorkerReport};
use integr8s_core::StoreError;
use tokio_util::sync::CancellationToken;

use super::Inner;

/// The executor mode a k8s worker reports.
pub const MODE: &str = "kubernetes";

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The languages and versions of the image registry.
pub(crate) fn runtimes(inner: &Inner) -> Vec<RuntimeReport> {
    inner
        .images
        .runtimes()
        .iter()
        .map(|r| RuntimeReport {
            lang: r.lang.clone(),
            versions: r.images.keys().cloned().collect(),
        })
        .collect()
}

/// Whether the Kubernetes API answers in the executor namespace.
async fn health(inner: &Inner) -> ExecutorHealth {
    match crate::config::ping(&inner.pods).await {
        Ok(()) => ExecutorHealth {
            ready: true,
            mode: MODE.to_owned(),
            detail: Some(format!("pods in namespace {}", inner.config.namespace)),
        },
        Err(e) => ExecutorHealth {
            ready: false,
            mode: MODE.to_owned(),
            detail: Some(format!(
                "the Kubernetes API does not answer in namespace {}: {e}",
                inner.config.namespace
            )),
        },
    }
}

pub(super) async fn renew(inner: &Inner, id: &str, lease: Duration) -> Result<(), StoreError> {
    let report = WorkerReport {
        worker_id: id.to_owned(),
        runtimes: runtimes(inner),
        executor: health(inner).await,
    };
    let now = integr8s_core::now();
    inner
        .store
        .renew_lease(&report, now, now + chrono_duration(lease))
        .await
}

/// Renews the lease every `heartbeat` until `stop`, then gives it up.
pub(super) async fn run(
    inner: Arc<Inner>,
    id: String,
    heartbeat: Duration,
    lease: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(heartbeat);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        if let Err(e) = renew(&inner, &id, lease).await {
            tracing::warn!(error = %e, "could not renew the k8s worker's lease");
        }
    }
    if let Err(e) = inner.store.drop_lease(&id).await {
        tracing::warn!(error = %e, "could not give the k8s worker's lease up; it expires by itself");
    }
}
