//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::roles::{Role, RoleSet};

#[derive(Debug, Parser)]
#[command(
    name = "integr8s",
    version,
    about = "Run untrusted scripts in isolated sandboxes and stream the results"
)]
pub struct Cli {
    /// TOML configuration file (same layout as the embedded defaults, see `check-config --print`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the roles in one process: all of them (the all-in-one server), or those of --roles.
    Serve(ServeCommand),
    #[command(flatten)]
    Role(RoleCommand),
    /// Create or upgrade the database schema (and the Kafka topics when `bus.brokers` is set), then exit.
    Migrate(ServeArgs),
    /// Create or reset the users `admin` and `user` with the configured passwords.
    SeedUsers(ServeArgs),
    /// Validate the configuration (for all roles, or those of --roles), print it with --print, then exit.
    CheckConfig(CheckArgs),
    /// Print the OpenAPI document of the HTTP API (JSON), then exit.
    Openapi,
    /// Measure end-to-end latency of a Python hello world through the API against bare python3.
    Bench(BenchArgs),
    /// Put load on a running deployment through its HTTP API: virtual users that follow real
    /// flows (user), random requests judged against the contract (monkey), or both; writes a
    /// JSON report (and SVG charts with --plots).
    Load(LoadArgs),
}

/// One subcommand per role (see [`Role`]): each runs that role alone in this process.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Run the HTTP API (role `api`).
    Api(ServeArgs),
    /// Run the coordinator: queue admission and dispatch (role `coordinator`).
    Coordinator(RoleArgs),
    /// Run the saga orchestrator (role `saga-orchestrator`).
    SagaOrchestrator(RoleArgs),
    /// Run scripts in the local sandbox (role `local-worker`).
    LocalWorker(RoleArgs),
    /// Run scripts as Kubernetes pods: create and delete executor pods (role `k8s-worker`).
    K8sWorker(RoleArgs),
    /// Watch the executor pods and report their runs; one per namespace (role `pod-monitor`).
    PodMonitor(RoleArgs),
    /// Store outcomes and free queue slots (role `result-processor`).
    ResultProcessor(RoleArgs),
    /// Redeliver or discard dead-lettered events (role `dlq-processor`).
    DlqProcessor(RoleArgs),
    /// Run replay sessions (role `event-replay`).
    EventReplay(RoleArgs),
    /// Create notifications and deliver webhooks (role `notifications`).
    Notifications(RoleArgs),
}

impl RoleCommand {
    /// The role the subcommand runs, and its flags.
    pub fn role(&self) -> (Role, ServeArgs) {
        let (role, args) = match self {
            RoleCommand::Api(a) => return (Role::Api, a.clone()),
            RoleCommand::Coordinator(a) => (Role::Coordinator, a),
            RoleCommand::SagaOrchestrator(a) => (Role::SagaOrchestrator, a),
            RoleCommand::LocalWorker(a) => (Role::LocalWorker, a),
            RoleCommand::K8sWorker(a) => (Role::K8sWorker, a),
            RoleCommand::PodMonitor(a) => (Role::PodMonitor, a),
            RoleCommand::ResultProcessor(a) => (Role::ResultProcessor, a),
            RoleCommand::DlqProcessor(a) => (Role::DlqProcessor, a),
            RoleCommand::EventReplay(a) => (Role::EventReplay, a),
            RoleCommand::Notifications(a) => (Role::Notifications, a),
        };
        (
            role,
            ServeArgs {
                data_dir: args.data_dir.clone(),
                ..ServeArgs::default()
            },
        )
    }
}

fn parse_roles(list: &str) -> Result<RoleSet, String> {
    RoleSet::parse(list)
}

#[derive(Debug, Args, Clone)]
pub struct ServeCommand {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Run only these roles, comma-separated (default: those of the all-in-one server, all
    /// but k8s-worker and pod-monitor): api, coordinator, saga-orchestrator, local-worker,
    /// k8s-worker, pod-monitor, result-processor, dlq-processor, event-replay, notifications.
    #[arg(long, value_name = "ROLES", value_parser = parse_roles)]
    pub roles: Option<RoleSet>,
}

/// The flags of a role without a listener of its own (its health port is `health.port`).
#[derive(Debug, Args, Clone, Default)]
pub struct RoleArgs {
    /// Directory for local files (replay files) [config: server.data_dir, env: INTEGR8S_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to bind [config: server.host, env: INTEGR8S_HOST]
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind [config: server.port, env: INTEGR8S_PORT]
    #[arg(long)]
    pub port: Option<u16>,
    /// Directory for the database and the generated secret [config: server.data_dir, env: INTEGR8S_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print the effective configuration (secrets redacted).
    #[arg(long)]
    pub print: bool,
    /// Also check that these roles (comma-separated) can run apart from the others with this
    /// configuration (the topology guard of their subcommands), and what they load at start
    /// (the k8s worker's runtime image registry).
    #[arg(long, value_name = "ROLES", value_parser = parse_roles)]
    pub roles: Option<RoleSet>,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Number of measured runs of each kind.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Python interpreter for the bare baseline.
    #[arg(long, default_value = "/usr/bin/python3")]
    pub python: PathBuf,
    /// Measure only one part: `api` (through the HTTP API) or `sandbox` (the executor alone).
    #[arg(long, value_enum)]
    pub only: Option<BenchPart>,
    /// Measure a running deployment at this URL (e.g. the scaled-out system's API) instead of
    /// starting a server; only the API part is measured then.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Account the bench logs in with (on a running deployment).
    #[arg(long, default_value = "admin", requires = "base_url")]
    pub username: String,
    /// Its password.
    #[arg(long, default_value = "admin123", requires = "base_url")]
    pub password: String,
    /// Also measure throughput through the API: `--runs` executions of `--script`, this many
    /// in flight at once (1: no throughput part).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// The Python script of the throughput part (it must exit 0).
    #[arg(long, default_value = "print('hello world')")]
    pub script: String,
    /// First sandbox uid of the bench's own server (and, one range further, of the sandbox
    /// part's executor), apart from other servers' ranges on this host.
    #[arg(long, default_value_t = crate::bench::BENCH_UID_BASE)]
    pub uid_base: u32,
    /// Start the bench's server with `sandbox.prestart = false`: every run starts its
    /// interpreter after it is released (the path of languages without a prestart command).
    #[arg(long, conflicts_with = "base_url")]
    pub without_prestart: bool,
}

/// A part of `integr8s bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    Api,
    Sandbox,
}

/// Which virtual users `integr8s load` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    User,
    Monkey,
    Both,
}

#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Where the deployment answers: scheme, host and port, no path. Every request goes there.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// user: real flows, every answer checked; monkey: random requests, every answer judged
    /// against the contract; both: the users split between the two.
    #[arg(long, value_enum, default_value = "user")]
    pub mode: LoadMode,
    /// Virtual users (each with an account of its own, unless --username is given).
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Requests in flight at once, all users together [default: --users].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to run: 90, 90s, 3m, 1h30m. Ctrl-C ends earlier, with the report so far.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Users start spread over this long [default: a tenth of --duration, at most 10s].
    #[arg(long, value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,
    /// Longest wait for one answer; a request without an answer by then counts as 599.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Directory for the report (load-<mode>-<time>.json) and the charts.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Also draw SVG charts: timeline (throughput, latency percentiles) and latency histogram.
    #[arg(long)]
    pub plots: bool,
    /// Accept any TLS certificate (self-signed deployments).
    #[arg(long)]
    pub insecure: bool,
    /// Sign every user in as this account instead of registering one per user.
    #[arg(long, requires = "password")]
    pub username: Option<String>,
    /// Password of --username.
    #[arg(
        long,
        env = "INTEGR8S_LOAD_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// No live progress line (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    integr8s_load::parse_duration(text)
}

impl LoadArgs {
    pub fn into_config(self) -> integr8s_load::LoadConfig {
        let mode = match self.mode {
            LoadMode::User => integr8s_load::Mode::User,
            LoadMode::Monkey => integr8s_load::Mode::Monkey,
            LoadMode::Both => integr8s_load::Mode::Both,
        };
        let credentials = match (self.username, self.password) {
            (Some(username), Some(password)) => {
                Some(integr8s_load::Credentials { username, password })
            }
            _ => None,
        };
        integr8s_load::LoadConfig {
            base_url: self.base_url,
            mode,
            users: self.users,
            concurrency: self.concurrency.unwrap_or(self.users),
            duration: self.duration,
            ramp_up: self
                .ramp_up
                .unwrap_or_else(|| (self.duration / 10).min(Duration::from_secs(10))),
            request_timeout: self.request_timeout,
            output: self.output,
            plots: self.plots,
            insecure: self.insecure,
            credentials,
            progress: !self.quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_role_has_its_subcommand() {
        for role in Role::ALL {
            let cli = Cli::try_parse_from(["integr8s", role.name(), "--data-dir", "/tmp/x"])
                .unwrap_or_else(|e| panic!("{role}: {e}"));
            let Command::Role(command) = cli.command else {
                panic!("{role}: not a role subcommand")
            };
            let (parsed, args) = command.role();
            assert_eq!(parsed, role);
            assert_eq!(
                args.data_dir.as_deref(),
                Some(std::path::Path::new("/tmp/x"))
            );
        }
    }

    #[test]
    fn serve_takes_a_role_list() {
        let cli = Cli::try_parse_from(["integr8s", "serve", "--roles", "api,coordinator"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.roles.unwrap().to_string(), "coordinator,api");
        assert!(Cli::try_parse_from(["integr8s", "serve", "--roles", "api,nope"]).is_err());
        assert!(Cli::try_parse_from(["integr8s", "coordinator", "--port", "1"]).is_err());
    }
}
