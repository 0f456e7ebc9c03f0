//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Run everything in one process: API, coordinator, saga orchestrator, local worker, result processor.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(ServeArgs),
    /// Create or reset the users `admin` and `user` with the configured passwords.
    SeedUsers(ServeArgs),
    /// Validate the configuration (and print it with --print), then exit.
    CheckConfig(CheckArgs),
    /// Print the OpenAPI document of the HTTP API (JSON), then exit.
    Openapi,
    /// Measure end-to-end latency of a Python hello world through the API against bare python3.
    Bench(BenchArgs),
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
}

/// A part of `integr8s bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPart {
    Api,
    Sandbox,
}
