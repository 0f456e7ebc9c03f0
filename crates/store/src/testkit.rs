//! Test fixtures for the PostgreSQL store: a throwaway PostgreSQL server started by
//! `scripts/postgres.sh` (a temporary data directory, trust authentication, 127.0.0.1 and a free
//! port only, its socket inside the directory) and a fresh database per test case.
//!
//! A [`PostgresServer`] stops its server when dropped. The server shared by a test binary
//! ([`PostgresServer::shared`]) lives in a static, which is never dropped: the script's watchdog
//! stops it as soon as the test process exits, however it exits.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use sqlx::{Connection, Executor, PgConnection};
use thiserror::Error;

/// The script that installs, starts and stops the server.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
/// Ports are chosen free, but another process may take one first: try a few.
const START_ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum TestkitError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("scripts/postgres.sh {command} failed: {stderr}")]
    Script { command: String, stderr: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A PostgreSQL server of its own, stopped (and its data removed) on drop.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    stopped: bool,
}

impl PostgresServer {
    /// Starts a new server (about two seconds).
    pub fn start() -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new().prefix("integr8s-pg-").tempdir()?;
            let port = free_port()?;
            match run_script(&[
                "start",
                &dir.path().to_string_lossy(),
                &port.to_string(),
                &std::process::id().to_string(),
            ]) {
                Ok(_) => {
                    return Ok(Self {
                        dir,
                        port,
                        stopped: false,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Script {
            command: "start".into(),
            stderr: "no attempt made".into(),
        }))
    }

    /// The server shared by every test of this test binary, started on first use.
    ///
    /// # Panics
    /// When the server cannot start: every test needing it would fail anyway, and the message
    /// says why.
    pub fn shared() -> &'static PostgresServer {
        static SHARED: OnceLock<PostgresServer> = OnceLock::new();
        SHARED.get_or_init(|| match PostgresServer::start() {
            Ok(server) => server,
            Err(e) => panic!("starting the test PostgreSQL server: {e}"),
        })
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://integr8s@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database with a unique name and returns its URL.
    pub async fn create_database(&self) -> Result<String, TestkitError> {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&self.url("postgres")).await?;
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await?;
        admin.close().await?;
        Ok(self.url(&name))
    }

    /// Starts the stopped server again, with its data, on the same port.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        run_script(&[
            "start",
            &self.dir.path().to_string_lossy(),
            &self.port.to_string(),
            &std::process::id().to_string(),
        ])?;
        self.stopped = false;
        Ok(())
    }

    /// Stops the server now (a crash-like immediate shutdown). Dropping it does the same.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        run_script(&["stop", &self.dir.path().to_string_lossy()]).map(drop)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the test PostgreSQL server: {e}");
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run_script(args: &[&str]) -> Result<String, TestkitError> {
    let output = Command::new("bash")
        .arg(Path::new(SCRIPT))
        .args(args)
        .output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(TestkitError::Script {
            command: args.first().copied().unwrap_or_default().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
