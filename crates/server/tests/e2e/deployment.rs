//! The scaled-out system for a test: PostgreSQL, Redis and a Kafka-protocol broker (tansu) of
//! its own, each in a process started here, and the roles as separate OS processes of the real
//! binary, started, stopped (SIGTERM) and killed (SIGKILL) by name: `api-1`, `local-worker-2`…

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use integr8s_bus::testing::Broker;
use integr8s_limiter::testing::RedisServer;
use integr8s_store::testkit::PostgresServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{next_uid_base, Client, BIN, DEADLINE, UID_BASE_VAR};

/// The roles of the scaled-out pipeline, each for a process of its own.
pub const PIPELINE: [&str; 6] = [
    "api",
    "coordinator",
    "saga-orchestrator",
    "local-worker",
    "result-processor",
    "dlq-processor",
];

/// One role process.
pub struct RoleProcess {
    pub role: String,
    child: Option<Child>,
    /// `http://host:port` of its health endpoints.
    pub health: String,
    /// `http://host:port` of its API, for the `api` role.
    pub api: Option<String>,
    /// Settings of this process only (its sandbox uids, kept across restarts).
    own_env: Vec<(String, String)>,
}

pub struct Deployment {
    pub postgres: PostgresServer,
    pub redis: RedisServer,
    pub broker: Broker,
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
    processes: BTreeMap<String, RoleProcess>,
}

impl Deployment {
    /// Starts PostgreSQL, Redis and the broker, and runs `integr8s migrate` (schema and topics).
    pub async fn new() -> Deployment {
        let postgres = tokio::task::spawn_blocking(PostgresServer::start)
            .await
            .expect("join")
            .expect("start PostgreSQL");
        let database_url = postgres.create_database().await.expect("create database");
        let redis = RedisServer::start().await;
        let broker = tokio::task::spawn_blocking(Broker::start)
            .await
            .expect("join");
        let prefix = format!("e2e{}.", &integr8s_core::new_id()[..8]);
        let env = [
            ("INTEGR8S_DATABASE__URL", database_url.clone()),
            ("INTEGR8S_BUS__BROKERS", broker.addr.clone()),
            ("INTEGR8S_BUS__TOPIC_PREFIX", prefix.clone()),
            // The broker holds a group's first join for about half the session timeout.
            ("INTEGR8S_BUS__SESSION_TIMEOUT_MS", "3000".into()),
            // tansu holds every fetch for the whole wait, which would add up on each hop.
            ("INTEGR8S_BUS__FETCH_WAIT_MS", "10".into()),
            ("INTEGR8S_BUS__RELAY_GRACE_MS", "1000".into()),
            ("INTEGR8S_LIMITER__REDIS_URL", redis.url()),
            ("INTEGR8S_LIMITER__KEY_PREFIX", prefix),
            (
                "INTEGR8S_AUTH__SECRET",
                format!("e2e-deployment-secret-{}", integr8s_core::new_id()),
            ),
            ("INTEGR8S_RATE_LIMIT__ENABLED", "false".into()),
            ("INTEGR8S_PORT", "0".into()),
            ("INTEGR8S_HEALTH__PORT", "0".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let d = Deployment {
            postgres,
            redis,
            broker,
            root: tempfile::tempdir().expect("temp dir"),
            env,
            processes: BTreeMap::new(),
        };
        d.migrate().await;
        d
    }

    /// Adds a setting of every process started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// A command of the binary with the deployment's settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// `integr8s migrate`: the schema, and the topics under the deployment's prefix.
    pub async fn migrate(&self) {
        let out = self
            .command(&["migrate", "--data-dir"])
            .arg(self.root.path().join("migrate"))
            .output()
            .await
            .expect("run migrate");
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("kafka topics"), "{stdout}");
    }

    /// Starts one more process of `role`; returns its name (`<role>-<n>`). `role` may also
    /// be several roles joined by `+` (`saga-orchestrator+result-processor`), run by one
    /// `integr8s serve --roles …` process.
    pub async fn start(&mut self, role: &str) -> String {
        let n = (1..)
            .find(|n| !self.processes.contains_key(&format!("{role}-{n}")))
            .expect("a free number");
        let name = format!("{role}-{n}");
        let own_env = if role.split('+').any(|r| r == "local-worker") {
            vec![(UID_BASE_VAR.to_owned(), next_uid_base().to_string())]
        } else {
            Vec::new()
        };
        let process = self.spawn(&name, role, own_env).await;
        self.processes.insert(name.clone(), process);
        name
    }

    /// Starts one process of each role.
    pub async fn start_all(&mut self, roles: &[&str]) -> Vec<String> {
        let mut names = Vec::new();
        for role in roles {
            names.push(self.start(role).await);
        }
        names
    }

    async fn spawn(&self, name: &str, role: &str, own_env: Vec<(String, String)>) -> RoleProcess {
        let data_dir: PathBuf = self.root.path().join(name);
        let roles = role.replace('+', ",");
        let mut cmd = if role.contains('+') {
            self.command(&["serve", "--roles", &roles, "--data-dir"])
        } else {
            self.command(&[role, "--data-dir"])
        };
        cmd.arg(&data_dir)
            .envs(own_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn a role");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (api, health) = tokio::time::timeout(DEADLINE, async {
            let mut api = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("integr8s listening on ") {
                    api = Some(url.trim().to_owned());
                }
                if let Some(url) = line.strip_prefix("integr8s health on ") {
                    return (api, url.trim().to_owned());
                }
            }
            panic!("{name} exited before its health port listened");
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not start"));
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RoleProcess {
            role: role.to_owned(),
            child: Some(child),
            health,
            api,
            own_env,
        }
    }

    fn process(&self, name: &str) -> &RoleProcess {
        self.processes
            .get(name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// The names of the processes, running or not.
    pub fn names(&self) -> Vec<String> {
        self.processes.keys().cloned().collect()
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.process(name).child.as_ref().and_then(Child::id)
    }

    /// The API URL of an `api` process.
    pub fn api(&self, name: &str) -> &str {
        self.process(name)
            .api
            .as_deref()
            .unwrap_or_else(|| panic!("{name} has no API"))
    }

    pub async fn login(&self, api: &str, user: &str, password: &str) -> Client {
        Client::login(self.api(api), user, password)
            .await
            .expect("login")
    }

    /// `GET /health/<which>` of a process: status and body.
    pub async fn health(&self, name: &str, which: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}/health/{which}", self.process(name).health))
            .await
            .expect("health request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("health json"))
    }

    /// `GET /metrics` on a process's health port: the Prometheus text.
    pub async fn metrics(&self, name: &str) -> String {
        let r = reqwest::get(format!("{}/metrics", self.process(name).health))
            .await
            .expect("metrics request");
        assert_eq!(r.status(), 200, "{name}: /metrics");
        r.text().await.expect("metrics text")
    }

    /// Waits until a process answers ready.
    pub async fn wait_ready(&self, name: &str) -> serde_json::Value {
        self.wait_health(name, 200).await
    }

    /// Waits until a process's readiness answers `status`; returns the body.
    pub async fn wait_health(&self, name: &str, status: u16) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let (got, body) = self.health(name, "ready").await;
            if got == status {
                return body;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{name} never answered {status}: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops a process with SIGTERM and returns its exit status.
    pub async fn stop(&mut self, name: &str) -> std::process::ExitStatus {
        let process = self.processes.get_mut(name).expect("known process");
        let mut child = process.child.take().expect("a running process");
        let pid = child.id().expect("pid").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} did not stop on SIGTERM"))
            .expect("wait")
    }

    /// Kills a process abruptly (SIGKILL), as a crash would.
    pub async fn kill(&mut self, name: &str) {
        let process = self.processes.get_mut(name).expect("known process");
        if let Some(mut child) = process.child.take() {
            child.kill().await.expect("kill");
        }
    }

    /// Starts a stopped or killed process again, with the same name and settings.
    pub async fn restart(&mut self, name: &str) {
        let old = self.processes.remove(name).expect("known process");
        assert!(old.child.is_none(), "{name} is still running");
        let process = self.spawn(name, &old.role, old.own_env).await;
        self.processes.insert(name.to_owned(), process);
    }
}
