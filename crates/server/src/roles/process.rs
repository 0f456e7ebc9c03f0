//! Running a set of roles in this process: adapters once, each role as tasks, the API's
//! listener and (when not all roles run here) the health port; then a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use integr8s_core::runtime::RuntimeRegistry;
use tokio_util::sync::CancellationToken;

use super::adapters::{load_registry, Adapters};
use super::engine::{start_sandbox, EngineParts, Kubernetes, RoleTasks};
use super::{api, health, topology, Role, RoleSet};
use crate::config::Config;

/// How long a stop may take for the roles to finish or hand back their work (live runs are
/// stopped and reported, acknowledged deliveries committed, streams closed).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs `roles` until SIGINT/SIGTERM or until one of them fails.
pub async fn run(
    config: Config,
    roles: RoleSet,
    logging: Arc<crate::logging::Logging>,
) -> anyhow::Result<()> {
    topology::check(&config, &roles)?;
    if integr8s_telemetry::install().is_none() {
        tracing::warn!("another metrics recorder is installed: /metrics will not answer");
    }
    let has_api = roles.contains(Role::Api);
    if has_api {
        crate::seed::check_exposure(&config)?;
    }
    let adapters = Arc::new(Adapters::open(&config, &roles).await?);
    if has_api {
        crate::seed::seed_if_empty(&config, adapters.store.as_ref()).await?;
        crate::seed::check_stored_defaults(&config, adapters.store.as_ref()).await?;
    }
    let registry = if has_api || roles.any(Role::uses_sandbox) {
        let registry_config = config.clone();
        tokio::task::spawn_blocking(move || load_registry(&registry_config))
            .await
            .context("probing runtimes")??
    } else {
        RuntimeRegistry::embedded()
    };
    let registry = Arc::new(registry);
    let executor = if roles.any(Role::uses_sandbox) {
        Some(start_sandbox(&config).await?)
    } else {
        None
    };

    let kubernetes = if roles.any(Role::uses_kubernetes) {
        Some(Kubernetes::connect(&config).await?)
    } else {
        None
    };

    let shutdown = CancellationToken::new();
    let mut tasks = RoleTasks::new();
    let parts = EngineParts {
        config: &config,
        adapters: &adapters,
        registry: registry.clone(),
        executor: executor.clone(),
        kubernetes: kubernetes.clone(),
    };
    for role in roles.iter() {
        parts.spawn(role, &mut tasks, &shutdown).await?;
    }
    if has_api {
        api::start(&config, &adapters, registry, &mut tasks, &shutdown).await?;
    }
    if !roles.is_all() {
        health::start(
            &config,
            &roles,
            adapters.clone(),
            executor,
            kubernetes,
            &mut tasks,
            &shutdown,
        )
        .await?;
    }
    let settings_watch = tokio::spawn(crate::logging::settings::watch(
        adapters.settings.clone(),
        logging,
        config.telemetry.settings_poll(),
        shutdown.clone(),
    ));
    tracing::info!(roles = %roles, "running");

    let outcome: anyhow::Result<()> = tokio::select! {
        () = crate::shutdown_signal() => { tracing::info!("shutting down"); Ok(()) }
        Some(res) = tasks.join_next() => Err(match res {
            Ok(Ok(())) => anyhow::anyhow!("a role stopped unexpectedly"),
            Ok(Err(e)) => anyhow::anyhow!("a role stopped unexpectedly: {e}"),
            Err(e) => anyhow::anyhow!("a role's task failed: {e}"),
        }),
    };
    shutdown.cancel();
    let _ = settings_watch.await;
    let drain = async {
        while let Some(res) = tasks.join_next().await {
            match res {
                Ok(Err(e)) => tracing::error!(error = %e, "role ended with an error"),
                Err(e) => tracing::error!(error = %e, "role task failed"),
                Ok(Ok(())) => {}
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "shutdown did not finish within {} s",
            SHUTDOWN_GRACE.as_secs()
        );
    } else {
        tracing::info!("stopped");
    }
    outcome
}
