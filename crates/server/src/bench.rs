//! `integr8s bench`: end-to-end latency of a Python hello world through the API (submit →
//! result available) against a bare `python3 -c 'print(1)'`, measured in one run, interleaved.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::{BenchArgs, BenchPart};

/// A logged-in API client speaking the contract (cookie + CSRF header).
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Client {
    pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().build()?;
        let resp = http
            .post(format!("{base}/api/v1/auth/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("login failed: {}", resp.status());
        }
        let cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let body: serde_json::Value = resp.json().await?;
        let csrf = body["csrf_token"]
            .as_str()
            .context("login response without csrf_token")?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        })
    }

    /// Submits a script and waits on the execution's SSE stream until it closes; returns the
    /// execution id and the last result frame.
    pub async fn execute_and_wait(
        &self,
        script: &str,
    ) -> anyhow::Result<(String, serde_json::Value)> {
        let resp = self
            .http
            .post(format!("{}/api/v1/execute", self.base))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .json(&serde_json::json!({"script": script, "lang": "python", "lang_version": "3.11"}))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "execute failed: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let body: serde_json::Value = resp.json().await?;
        let id = body["execution_id"]
            .as_str()
            .context("no execution_id")?
            .to_owned();
        let stream = self
            .http
            .get(format!("{}/api/v1/events/executions/{id}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await?;
        let mut bytes = stream.bytes_stream();
        let mut last_result = serde_json::Value::Null;
        let mut buf = String::new();
        while let Some(chunk) = bytes.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(pos) = buf.find("\n\n").or_else(|| buf.find("\r\n\r\n")) {
                let frame: String = buf.drain(..pos + 2).collect();
                for line in frame.lines() {
                    if let Some(data) = line.strip_prefix("data: ") {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                            if !v["result"].is_null() {
                                last_result = v["result"].clone();
                            }
                        }
                    }
                }
            }
        }
        Ok((id, last_result))
    }

    /// The stored events of an execution: `(event_type, timestamp)` in order.
    async fn events(
        &self,
        id: &str,
    ) -> anyhow::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let events: Vec<serde_json::Value> = self
            .http
            .get(format!("{}/api/v1/executions/{id}/events", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(events
            .iter()
            .filter_map(|e| {
                let name = e["event_type"].as_str()?.to_owned();
                let at = e["timestamp"].as_str()?.parse().ok()?;
                Some((name, at))
            })
            .collect())
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(base) = &args.base_url {
        if args.only == Some(BenchPart::Sandbox) {
            bail!("--base-url measures a running deployment through its API; --only sandbox measures this host's sandbox without one");
        }
        let base = base.trim_end_matches('/');
        println!("deployment at {base}");
        let client = Client::login(base, &args.username, &args.password)
            .await
            .with_context(|| format!("logging in to {base} as {}", args.username))?;
        return measure(&client, &args).await;
    }
    if args.only != Some(BenchPart::Sandbox) {
        api_report(&args).await?;
    }
    if args.only != Some(BenchPart::Api) {
        sandbox_report(&args).await?;
    }
    Ok(())
}

/// Default first sandbox uid of the bench's server and of its own executor (one after the
/// other), apart from the default range of a server that may be running on this host.
pub const BENCH_UID_BASE: u32 = 190_000;

/// The API part: a server of this binary on a free port with a throw-away data dir.
async fn api_report(args: &BenchArgs) -> anyhow::Result<()> {
    let data_dir = std::env::temp_dir().join(format!("integr8s-bench-{}", std::process::id()));
    let exe = std::env::current_exe().context("locating the integr8s binary")?;
    let mut server = tokio::process::Command::new(exe)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "warn")
        // The bench measures the pipeline, not the per-user request budget.
        .env("INTEGR8S_RATE_LIMIT__ENABLED", "false")
        // Sandbox uids apart from a server that may run on this host with the default ones.
        .env("INTEGR8S_SANDBOX__UID_BASE", args.uid_base.to_string())
        .env(
            "INTEGR8S_SANDBOX__PRESTART",
            if args.without_prestart {
                "false"
            } else {
                "true"
            },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let stdout = server.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("server did not start within 60 s")??
            .context("server exited before listening")?;
        if let Some(url) = line.strip_prefix("integr8s listening on ") {
            break url.trim().to_owned();
        }
    };
    println!(
        "interpreters started ahead of their runs (sandbox.prestart): {}",
        if args.without_prestart { "off" } else { "on" }
    );
    let result = match Client::login(&base, "admin", "admin123").await {
        Ok(client) => measure(&client, args).await,
        Err(e) => Err(e),
    };
    let _ = server.start_kill();
    let _ = server.wait().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

/// The sandbox on its own: sandboxed vs bare latency and throughput, in this process.
async fn sandbox_report(args: &BenchArgs) -> anyhow::Result<()> {
    let config = integr8s_sandbox::SandboxConfig {
        max_concurrent: 2,
        uid_base: args.uid_base,
        ..Default::default()
    };
    let executor = integr8s_sandbox::LocalExecutor::start(config).await;
    let python = args.python.to_string_lossy();
    let report = integr8s_sandbox::bench_report(&executor, &python, args.runs)
        .await
        .map_err(|e| anyhow::anyhow!("sandbox bench: {e}"))?;
    println!();
    println!("sandbox alone:");
    print!("{report}");
    Ok(())
}

async fn measure(client: &Client, args: &BenchArgs) -> anyhow::Result<()> {
    let script = "print('hello world')";
    for _ in 0..3 {
        let (_, r) = client.execute_and_wait(script).await?;
        if r["stdout"] != "hello world\n" {
            bail!("warm-up execution did not print hello world: {r}");
        }
    }
    let mut api = Vec::with_capacity(args.runs);
    let mut bare = Vec::with_capacity(args.runs);
    let mut runs = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let submitted = chrono::Utc::now();
        let (id, r) = client.execute_and_wait(script).await?;
        api.push(t.elapsed());
        runs.push((t.elapsed(), id, submitted));
        if r["status"] != "completed" {
            bail!("execution did not complete: {r}");
        }
        let t = Instant::now();
        let status = tokio::process::Command::new(&args.python)
            .args(["-c", "print(1)"])
            .stdout(Stdio::null())
            .status()
            .await
            .with_context(|| format!("running {}", args.python.display()))?;
        bare.push(t.elapsed());
        if !status.success() {
            bail!("bare python failed: {status}");
        }
    }
    let (a, b) = (median(api), median(bare));
    println!("runs: {} each, interleaved", args.runs);
    println!(
        "api python hello world (submit -> result): median {:.1} ms",
        a.as_secs_f64() * 1e3
    );
    println!(
        "bare python3 -c 'print(1)':               median {:.1} ms",
        b.as_secs_f64() * 1e3
    );
    println!("ratio api/bare: {:.2}", a.as_secs_f64() / b.as_secs_f64());
    // Where the time of the median run went, from the stored events' timestamps.
    runs.sort_by_key(|r| r.0);
    if let Some((total, id, submitted)) = runs.get(runs.len() / 2) {
        let ms = |at: chrono::DateTime<chrono::Utc>| {
            (at - *submitted).num_microseconds().unwrap_or(0) as f64 / 1e3
        };
        let mut line = String::from("median run: submit 0.0");
        for (name, at) in client.events(id).await? {
            line.push_str(&format!(" -> {name} {:.1}", ms(at)));
        }
        line.push_str(&format!(
            " -> stream closed {:.1} ms",
            total.as_secs_f64() * 1e3
        ));
        println!("{line}");
    }
    if args.concurrency > 1 {
        throughput(client, args).await?;
    }
    Ok(())
}

/// `--runs` executions of `--script` with `--concurrency` in flight, each followed to its
/// result over its event stream: executions per second over the whole batch.
async fn throughput(client: &Client, args: &BenchArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<(String, serde_json::Value)>> =
        futures::stream::iter((0..args.runs).map(|_| client.execute_and_wait(&args.script)))
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
    let elapsed = start.elapsed();
    for r in results {
        let (id, result) = r?;
        if result["status"] != "completed" || result["exit_code"] != 0 {
            bail!("execution {id} of the throughput part did not complete: {result}");
        }
    }
    println!(
        "throughput: {} executions of {:?}, {} in flight: {:.1} s, {:.2} executions/s",
        args.runs,
        args.script,
        args.concurrency,
        elapsed.as_secs_f64(),
        args.runs as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
