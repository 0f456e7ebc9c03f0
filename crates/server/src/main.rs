//! The `integr8s` binary.

mod bench;
mod cli;
mod config;
mod limiter;
mod logging;
mod roles;
mod secret;
mod seed;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use integr8s_telemetry::trace::export::ExportSettings;

use crate::cli::{Cli, Command, ServeArgs};
use crate::config::{CliOverrides, Config};
use crate::roles::RoleSet;

/// jemalloc for every allocation of the process (SQLite's too: the allocator replaces `malloc`).
/// Its background thread returns freed pages to the system a few seconds after a burst (a run's
/// multi-megabyte output copied across the pipeline), so an idle server shrinks back instead of
/// keeping the high-water mark of glibc's per-thread arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn load_config(cli_config: Option<&std::path::Path>, args: &ServeArgs) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = CliOverrides {
        host: args.host.clone(),
        port: args.port,
        data_dir: args.data_dir.clone(),
    };
    Ok(Config::load(cli_config, &env, &overrides)?)
}

fn init_tracing(json: bool) -> logging::Logging {
    logging::Logging::init(json, None)
}

/// Logging for a process that runs `roles`, with the trace exporter when an endpoint is set.
fn init_role_tracing(config: &Config, roles: &RoleSet) -> Arc<logging::Logging> {
    let t = &config.telemetry;
    let export = (!t.otlp_endpoint.is_empty()).then(|| ExportSettings {
        endpoint: t.otlp_endpoint.clone(),
        service_name: if t.service_name.is_empty() {
            roles.service_name()
        } else {
            t.service_name.clone()
        },
        sampling_rate: t.sampling_rate,
        timeout: std::time::Duration::from_secs(10),
    });
    Arc::new(logging::Logging::init(
        config.server.log_format == "json",
        export.as_ref(),
    ))
}

/// Runs `roles`, then sends the spans still buffered.
async fn run_roles(config: Config, roles: RoleSet) -> anyhow::Result<()> {
    let logging = init_role_tracing(&config, &roles);
    let outcome = roles::run(config, roles, logging.clone()).await;
    // The exporter's last requests run on this runtime: wait for them off its workers.
    let flushing = logging.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || flushing.shutdown()).await {
        eprintln!("trace exporter shutdown: {e}");
    }
    outcome
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Role(command) => {
            let (role, args) = command.role();
            let config = load_config(cli.config.as_deref(), &args)?;
            run_roles(config, RoleSet::one(role)).await
        }
        Command::Serve(args) => {
            let config = load_config(cli.config.as_deref(), &args.serve)?;
            run_roles(config, args.roles.unwrap_or_else(RoleSet::all)).await
        }
        Command::Migrate(args) => {
            let config = load_config(cli.config.as_deref(), &args)?;
            init_tracing(false);
            roles::adapters::open_store(&config).await?;
            let url = integr8s_store::redact_url(&config.database_url());
            println!("database {url} is up to date");
            if let Some(kafka) = config.bus.kafka() {
                let topics = integr8s_bus::kafka::create_topics(&kafka).await?;
                println!(
                    "kafka topics under prefix '{}': {} created, {} already there",
                    kafka.topic_prefix,
                    topics.created.len(),
                    topics.existing.len()
                );
            }
            Ok(())
        }
        Command::SeedUsers(args) => {
            let config = load_config(cli.config.as_deref(), &args)?;
            init_tracing(false);
            let store = roles::adapters::open_store(&config).await?;
            seed::seed_force(&config, store.as_ref()).await
        }
        Command::CheckConfig(args) => {
            let config = load_config(cli.config.as_deref(), &args.serve)?;
            let roles = args.roles.unwrap_or_else(RoleSet::all);
            roles::topology::check(&config, &roles)?;
            if roles.contains(roles::Role::Api) {
                seed::check_exposure(&config)?;
            }
            if roles.contains(roles::Role::K8sWorker) {
                // The runtime image registry the k8s worker would load at start.
                config.k8s.to_config()?.image_registry()?;
            }
            if args.print {
                println!("{config:#?}");
            }
            println!("configuration is valid for roles {roles}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", integr8s_api::openapi::document_pretty());
            Ok(())
        }
        Command::Bench(args) => {
            init_tracing(false);
            bench::run(args).await
        }
        Command::Load(args) => {
            init_tracing(false);
            let interrupt = tokio_util::sync::CancellationToken::new();
            let on_signal = interrupt.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.cancel();
            });
            let outcome = integr8s_load::run(args.into_config(), interrupt).await?;
            print!("{}", outcome.report.summary());
            println!("report: {}", outcome.report_path.display());
            for plot in &outcome.plot_paths {
                println!("chart: {}", plot.display());
            }
            Ok(())
        }
    }
}
