//! A running server per test, and a small client that speaks the contract (cookies + CSRF).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_integr8s");
/// Generous bound so a broken build fails instead of hanging; never a performance threshold.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The setting of the first sandbox uid of a server.
pub const UID_BASE_VAR: &str = "INTEGR8S_SANDBOX__UID_BASE";

/// A sandbox uid range of its own for every server this test process starts (each claims its
/// range and refuses to start on a taken one), apart from those of other test processes.
pub fn next_uid_base() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    1_000_000 + (std::process::id() % 1000) * 100_000 + (n % 1500) * 64
}

pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    env: Vec<(String, String)>,
    /// The server's stderr (its log lines), when started with [`Server::start_logged`].
    log: Option<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl Server {
    pub async fn start(env: &[(&str, &str)]) -> Server {
        Self::start_with(env, false).await
    }

    /// Like [`Server::start`], keeping what the server writes on stderr (read with
    /// [`Server::log`]).
    pub async fn start_logged(env: &[(&str, &str)]) -> Server {
        Self::start_with(env, true).await
    }

    async fn start_with(env: &[(&str, &str)], logged: bool) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().to_path_buf();
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut s = Server {
            base: String::new(),
            data_dir,
            _tmp: Some(tmp),
            child: None,
            env,
            log: logged.then(Default::default),
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--data-dir"])
            .arg(&self.data_dir)
            .env("RUST_LOG", "warn")
            // Suites fire many requests quickly; rate-limit tests turn it back on.
            .env("INTEGR8S_RATE_LIMIT__ENABLED", "false")
            .stdout(Stdio::piped())
            .stderr(if self.log.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true);
        if !self.env.iter().any(|(k, _)| k == UID_BASE_VAR) {
            // Kept across restarts: the range is this server's.
            self.env
                .push((UID_BASE_VAR.to_owned(), next_uid_base().to_string()));
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn integr8s");
        if let (Some(log), Some(stderr)) = (self.log.clone(), child.stderr.take()) {
            let mut lines = BufReader::new(stderr).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(DEADLINE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("integr8s listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("server exited before listening");
        })
        .await
        .expect("server start");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.base = base;
        self.child = Some(child);
    }

    /// What the server wrote on stderr so far (empty unless started with
    /// [`Server::start_logged`]).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .map(|l| l.lock().expect("log").clone())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("running server")
    }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    pub async fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill");
        }
    }

    /// Stops the server with SIGTERM and waits for it.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = tokio::time::timeout(DEADLINE, c.wait()).await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    pub async fn login(&self, user: &str, password: &str) -> Client {
        Client::login(&self.base, user, password)
            .await
            .expect("login")
    }

    pub async fn admin(&self) -> Client {
        self.login("admin", "admin123").await
    }

    pub async fn user(&self) -> Client {
        self.login("user", "user123").await
    }

    /// Registers and logs in a fresh user.
    pub async fn new_user(&self, name: &str) -> Client {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"}))
            .send()
            .await
            .expect("register");
        assert_eq!(
            r.status(),
            200,
            "register {name}: {}",
            r.text().await.unwrap_or_default()
        );
        self.login(name, "password123").await
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Client {
    pub async fn login(base: &str, user: &str, password: &str) -> Result<Client, String> {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("login {user}: {}", r.status()));
        }
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
        let body: Value = r.json().await.map_err(|e| e.to_string())?;
        let csrf = body["csrf_token"]
            .as_str()
            .ok_or("no csrf_token")?
            .to_owned();
        Ok(Client {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        })
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("X-CSRF-Token", &self.csrf)
                .json(&body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(
            self.http
                .delete(format!("{}{path}", self.base))
                .header("X-CSRF-Token", &self.csrf),
        )
        .await
    }

    /// Submits a Python script; returns the execution id.
    pub async fn submit(&self, script: &str) -> String {
        let r = self
            .post(
                "/api/v1/execute",
                json!({"script": script, "lang": "python", "lang_version": "3.11"}),
            )
            .await;
        assert_eq!(r.status, 200, "execute: {}", r.body);
        assert_eq!(r.body["status"], "queued");
        r.body["execution_id"]
            .as_str()
            .expect("execution_id")
            .to_owned()
    }

    pub async fn result(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/v1/executions/{id}/result")).await;
        assert_eq!(r.status, 200, "result: {}", r.body);
        r.body
    }

    /// Polls the result until `done(status)` holds.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&str) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.result(id).await;
            if done(r["status"].as_str().unwrap_or_default()) {
                return r;
            }
            assert!(start.elapsed() < DEADLINE, "execution {id} stuck: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_for(id, |s| !matches!(s, "queued" | "scheduled" | "running"))
            .await
    }

    pub async fn run(&self, script: &str) -> Value {
        let id = self.submit(script).await;
        self.wait_terminal(&id).await
    }

    /// Reads an SSE stream to its end and returns the `data:` payloads.
    pub async fn sse(&self, path: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("sse");
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream"));
        let text = tokio::time::timeout(DEADLINE, r.text())
            .await
            .expect("stream closes")
            .expect("body");
        text.split("\n")
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("frame json"))
            .collect()
    }
}

/// Descendants of `pid` that run a script (their command line names the sandbox's work dir).
/// Idle bubblewraps kept ready for the next run are not scripts, nor are interpreters started
/// ahead that still wait for their run (see [`waiting_interpreter`]).
pub fn script_processes(pid: u32) -> Vec<u32> {
    descendants(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("/work/main."))
                .unwrap_or(false)
                && !waiting_interpreter(*p)
        })
        .collect()
}

/// Whether `pid` is an interpreter started ahead of a run that has not been given one yet: its
/// standard output is still `/dev/null` (a run's streams are pipes).
pub fn waiting_interpreter(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/fd/1"))
        .is_ok_and(|target| target == std::path::Path::new("/dev/null"))
}

/// Pids of all descendants of `pid` on the host.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The ppid is the second field after the parenthesised command name.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                    parents.push((p, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parents {
            if parent == p {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}
