//! The orphan sweep: executor pods and ConfigMaps whose execution ended (at least one sweep
//! interval ago) or is unknown are deleted (left behind by a crash between a result and its cleanup, a failed delete, or an
//! execution deleted by an admin). The namespace must belong to one integr8s instance.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::{DeleteParams, ListParams};
use kube::ResourceExt;
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::error::{is_not_found, K8sError};
use crate::manifest::{EXECUTOR_SELECTOR, LABEL_EXECUTION};

pub(super) async fn run(inner: Arc<Inner>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(inner.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep(&inner).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "orphaned executor objects deleted"),
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed; retried on the next tick"),
        }
    }
}

pub(super) async fn sweep(inner: &Inner) -> Result<usize, K8sError> {
    let params = ListParams::default().labels(EXECUTOR_SELECTOR);
    let pods = inner.pods.list(&params).await?;
    let config_maps = inner.config_maps.list(&params).await?;
    let ids: BTreeSet<String> = pods
        .items
        .iter()
        .map(|p| p.labels())
        .chain(config_maps.items.iter().map(|c| c.labels()))
        .filter_map(|labels| labels.get(LABEL_EXECUTION).cloned())
        .collect();
    // An execution that ended lately is left to its own cleanup (after `result_stored`).
    let settle =
        chrono::Duration::from_std(inner.config.sweep_interval).unwrap_or(chrono::Duration::MAX);
    let now = integr8s_core::now();
    let mut orphaned = BTreeSet::new();
    for id in ids {
        match inner.store.execution(&id).await? {
            Some(e) if !e.status.is_terminal() || now - e.updated_at < settle => {}
            _ => {
                orphaned.insert(id);
            }
        }
    }
    let mut deleted = 0;
    let at_once = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    for pod in &pods.items {
        if pod
            .labels()
            .get(LABEL_EXECUTION)
            .is_some_and(|id| orphaned.contains(id))
        {
            match inner.pods.delete(&pod.name_any(), &at_once).await {
                Ok(_) => deleted += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for config_map in &config_maps.items {
        if config_map
            .labels()
            .get(LABEL_EXECUTION)
            .is_some_and(|id| orphaned.contains(id))
        {
            match inner
                .config_maps
                .delete(&config_map.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => deleted += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(deleted)
}
