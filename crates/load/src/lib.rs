//! `integr8s load`: virtual users against any integr8s deployment, through its HTTP API only.
//!
//! - **user** mode: each user registers (unique name per run), logs in with the form and keeps
//!   the CSRF token, reads `/auth/me`, then follows weighted flows (execute and follow the result
//!   over the event stream or by polling, valid and failing scripts; event history; saved
//!   scripts; settings and notifications) and checks every answer.
//! - **monkey** mode: random requests; every answer must be a well-formed contract answer, and
//!   any that is not is a finding, kept with its request.
//! - a JSON report per endpoint (method and path template), totals, a per-second timeline and
//!   execution figures; SVG charts on request.

pub mod accounts;
pub mod client;
pub mod config;
pub mod error;
pub mod monkey;
pub mod plots;
pub mod progress;
pub mod report;
pub mod stats;
pub mod template;
pub mod user;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{parse_duration, Credentials, LoadConfig, Mode};
pub use error::LoadError;
pub use report::{Report, StoppedBy};

use accounts::Accounts;
use client::{Call, Session, Target};
use stats::Stats;
use user::execute::Runtime;

/// What a run left behind.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub report_path: PathBuf,
    pub plot_paths: Vec<PathBuf>,
}

/// Runs the load until `config.duration` passes or `interrupt` is cancelled, then writes the
/// report (and the charts) of what was measured.
pub async fn run(config: LoadConfig, interrupt: CancellationToken) -> Result<Outcome, LoadError> {
    config.validate()?;
    let started_at = chrono::Utc::now();
    let stats = Arc::new(Stats::new());
    let stop = CancellationToken::new();
    let target = Arc::new(Target::new(&config, stats.clone(), stop.clone())?);
    let runtime = preflight(&target).await?;
    let (user_count, monkey_count) = config.mode.split(config.users);
    if user_count > 0 && runtime.is_none() {
        return Err(LoadError::Preflight {
            base: config.base().to_owned(),
            detail: "no Python runtime is offered (GET /api/v1/k8s-limits), user flows need one"
                .to_owned(),
        });
    }
    let runtime = Arc::new(runtime.unwrap_or(Runtime {
        lang: "python".to_owned(),
        version: "3".to_owned(),
        timeout: Duration::from_secs(30),
    }));

    let progress = progress::start(
        stats.clone(),
        config.progress,
        config.duration,
        stop.clone(),
    );
    let accounts = Arc::new(Accounts::new());
    let shared = match &config.credentials {
        Some(c) => match accounts.login(&target, &c.username, &c.password).await {
            Ok(Some(session)) => Some(session),
            _ => {
                stop.cancel();
                return Err(LoadError::SignIn(format!(
                    "login as '{}' was refused",
                    c.username
                )));
            }
        },
        None => None,
    };

    let mut users: JoinSet<SignIn> = JoinSet::new();
    let total = user_count + monkey_count;
    for index in 0..total {
        let is_user = index < user_count;
        let delay = config.ramp_up.mul_f64(index as f64 / total as f64);
        let target = target.clone();
        let accounts = accounts.clone();
        let runtime = runtime.clone();
        let shared = shared.clone();
        let password = config.credentials.as_ref().map(|c| c.password.clone());
        users.spawn(async move {
            if target.pause(delay).await.is_err() {
                return SignIn::NotStarted;
            }
            let kind = if is_user { "user" } else { "monkey" };
            let session = match shared {
                Some(s) => Some(s),
                None => {
                    let name = accounts.username(kind, index);
                    match accounts.sign_up(&target, &name).await {
                        Ok(s) => s,
                        Err(_) => return SignIn::NotStarted,
                    }
                }
            };
            let Some(session) = session else {
                tracing::warn!(kind, index, "virtual user could not sign in");
                return SignIn::Failed;
            };
            if is_user {
                user::run(target, session, runtime).await;
            } else {
                let relogin = monkey::Relogin { accounts, password };
                monkey::run(target, session, relogin).await;
            }
            SignIn::SignedIn
        });
    }

    // The run ends at the duration, on an interrupt, or when no user is left.
    let mut tally = Tally::default();
    let deadline = tokio::time::sleep(config.duration);
    tokio::pin!(deadline);
    let stopped_by = loop {
        tokio::select! {
            () = &mut deadline => break StoppedBy::Duration,
            () = interrupt.cancelled() => break StoppedBy::Interrupt,
            joined = users.join_next() => match joined {
                Some(joined) => tally.add(joined),
                None => break StoppedBy::NoUsersLeft,
            },
        }
    };
    stop.cancel();
    while let Some(joined) = users.join_next().await {
        tally.add(joined);
    }
    if let Some(progress) = progress {
        let _ = progress.await;
    }

    let report = Report {
        tool: "integr8s load",
        version: env!("CARGO_PKG_VERSION"),
        base_url: config.base().to_owned(),
        mode: config.mode.as_str(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_requested_s: config.duration.as_secs_f64(),
        stopped_by,
        users: report::Users {
            user: user_count,
            monkey: monkey_count,
            signed_in: tally.signed_in,
            sign_in_failed: tally.failed,
            shared_account: shared.is_some(),
        },
        concurrency: config.concurrency,
        runtime: (user_count > 0).then(|| format!("{} {}", runtime.lang, runtime.version)),
        stats: stats.report(),
    };
    std::fs::create_dir_all(&config.output).map_err(|source| LoadError::Write {
        path: config.output.clone(),
        source,
    })?;
    let stem = report.stem(&config.output);
    let mut report_path = stem.clone().into_os_string();
    report_path.push(".json");
    let report_path = PathBuf::from(report_path);
    report.write(&report_path)?;
    let plot_paths = if config.plots {
        plots::draw(&report, &stem)?
    } else {
        Vec::new()
    };
    Ok(Outcome {
        report,
        report_path,
        plot_paths,
    })
}

/// How a virtual user's sign-in went.
enum SignIn {
    SignedIn,
    Failed,
    /// The run ended before the user signed in.
    NotStarted,
}

#[derive(Default)]
struct Tally {
    signed_in: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, joined: Result<SignIn, tokio::task::JoinError>) {
        match joined {
            Ok(SignIn::SignedIn) => self.signed_in += 1,
            Ok(SignIn::NotStarted) => {}
            Ok(SignIn::Failed) | Err(_) => self.failed += 1,
        }
    }
}

/// Checks that the base URL answers as an integr8s deployment and learns the runtime the
/// user flows submit to (the newest Python it offers) and its run timeout.
async fn preflight(target: &Target) -> Result<Option<Runtime>, LoadError> {
    let fail = |detail: String| LoadError::Preflight {
        base: target.base().to_owned(),
        detail,
    };
    let answer = target
        .send(&Session::default(), &Call::get("/api/v1/k8s-limits"))
        .await
        .map_err(|_| fail("stopped".to_owned()))?;
    if let Some(kind) = &answer.exception {
        return Err(fail(format!("no answer ({kind})")));
    }
    if answer.status != 200 {
        return Err(fail(format!(
            "GET /api/v1/k8s-limits answered {}",
            answer.status
        )));
    }
    let body = answer.json().unwrap_or_default();
    let timeout = body
        .get("execution_timeout")
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(30), Duration::from_secs);
    let version = body
        .pointer("/supported_runtimes/python/versions")
        .and_then(Value::as_array)
        .and_then(|versions| versions.iter().filter_map(Value::as_str).next_back())
        .map(str::to_owned);
    Ok(version.map(|version| Runtime {
        lang: "python".to_owned(),
        version,
        timeout,
    }))
}
