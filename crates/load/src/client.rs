//! The HTTP side of a run: one connection pool for all virtual users, requests only to the base
//! URL, a bound on requests in flight, every answer (or its absence, as 599) recorded, and the
//! session of a virtual user (cookies and CSRF token, as the contract hands them out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, Response};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::LoadConfig;
use crate::error::LoadError;
use crate::stats::{Sample, Stats, NO_ANSWER};
use crate::template::template;

/// Bytes of a body kept for checks; the rest is counted, not kept.
const KEEP_MAX: usize = 1 << 20;
/// How long a plain request reads an event stream before it lets go of it.
const STREAM_PEEK: Duration = Duration::from_millis(500);

/// The run ended (duration reached or interrupted): the caller stops at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Raw {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

/// What goes in the `X-CSRF-Token` header.
#[derive(Debug, Clone)]
pub enum Csrf {
    /// The session's token on state-changing methods.
    Session,
    Omit,
    Value(String),
}

/// Which statuses are the expected answer (others are errors).
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Success,
    Statuses(&'static [u16]),
    /// Anything but a server error (the monkey judges bodies itself).
    NoServerError,
}

impl Expect {
    fn accepts(self, status: u16) -> bool {
        match self {
            Expect::Success => (200..300).contains(&status),
            Expect::Statuses(list) => list.contains(&status),
            Expect::NoServerError => status < 500,
        }
    }
}

/// One request, relative to the base URL.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub body: Body,
    pub csrf: Csrf,
    /// Send the session's cookies.
    pub cookie: bool,
    pub expect: Expect,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: Body::None,
            csrf: Csrf::Session,
            cookie: true,
            expect: Expect::Success,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).body(Body::Json(body))
    }

    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PUT, path).body(Body::Json(body))
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    pub fn endpoint(&self) -> &'static str {
        template(&self.path)
    }
}

/// An answer, read whole (or the first [`KEEP_MAX`] bytes of it).
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: Method,
    pub endpoint: &'static str,
    /// [`NO_ANSWER`] when there was none (see `exception`).
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub latency: Duration,
    /// Why there was no answer.
    pub exception: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }

    /// Seconds the server asks to wait before trying again.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn text(&self, max: usize) -> String {
        let end = self.body.len().min(max);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }
}

/// The cookies and CSRF token of a signed-in virtual user.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub username: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Session {
    /// The session a successful login answer hands out (`None` without a CSRF token).
    pub fn from_login(username: &str, answer: &Answer) -> Option<Session> {
        let cookie = answer
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::trim))
            .filter(|pair| pair.contains('='))
            .collect::<Vec<_>>()
            .join("; ");
        let csrf = answer.json()?.get("csrf_token")?.as_str()?.to_owned();
        Some(Session {
            username: username.to_owned(),
            cookie: (!cookie.is_empty()).then_some(cookie),
            csrf: Some(csrf),
        })
    }

    pub fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    pub fn has_cookie(&self) -> bool {
        self.cookie.is_some()
    }
}

/// The deployment under load, shared by every virtual user.
pub struct Target {
    http: reqwest::Client,
    base: String,
    pub stats: Arc<Stats>,
    slots: Arc<Semaphore>,
    pub cancel: CancellationToken,
    timeout: Duration,
}

impl Target {
    pub fn new(
        config: &LoadConfig,
        stats: Arc<Stats>,
        cancel: CancellationToken,
    ) -> Result<Self, LoadError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(config.insecure)
            // Requests go to the base URL only: never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.concurrency)
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("integr8s-load/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(LoadError::Client)?;
        Ok(Self {
            http,
            base: config.base().to_owned(),
            stats,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            cancel,
            timeout: config.request_timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, Stopped> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(Stopped),
            permit = self.slots.clone().acquire_owned() => permit.map_err(|_| Stopped),
        }
    }

    fn build(&self, session: &Session, call: &Call) -> reqwest::RequestBuilder {
        debug_assert!(call.path.starts_with('/'));
        let mut req = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path));
        if call.cookie {
            if let Some(cookie) = &session.cookie {
                req = req.header("Cookie", cookie);
            }
        }
        let unsafe_method = !matches!(call.method, Method::GET | Method::HEAD | Method::OPTIONS);
        match &call.csrf {
            Csrf::Session if unsafe_method => {
                if let Some(token) = &session.csrf {
                    req = req.header("X-CSRF-Token", token);
                }
            }
            Csrf::Session | Csrf::Omit => {}
            Csrf::Value(v) => req = req.header("X-CSRF-Token", v),
        }
        match &call.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Form(fields) => req.form(fields),
            Body::Raw {
                content_type,
                bytes,
            } => {
                if let Some(ct) = content_type {
                    req = req.header(CONTENT_TYPE, ct);
                }
                req.body(bytes.clone())
            }
        }
    }

    /// Sends `call` and reads its answer; records it (a failure to get one as 599).
    pub async fn send(&self, session: &Session, call: &Call) -> Result<Answer, Stopped> {
        let _slot = self.slot().await?;
        let endpoint = call.endpoint();
        let started = Instant::now();
        let exchange = async {
            let resp = self.build(session, call).send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let (body, bytes) = read_body(resp).await?;
            Ok::<_, reqwest::Error>((status, headers, body, bytes))
        };
        let outcome = tokio::select! {
            () = self.cancel.cancelled() => return Err(Stopped),
            r = tokio::time::timeout(self.timeout, exchange) => r,
        };
        let latency = started.elapsed();
        let (status, headers, body, bytes, exception) = match outcome {
            Ok(Ok((status, headers, body, bytes))) => (status, headers, body, bytes, None),
            Ok(Err(e)) => (
                NO_ANSWER,
                HeaderMap::new(),
                Vec::new(),
                0,
                Some(kind_of(&e)),
            ),
            Err(_) => (
                NO_ANSWER,
                HeaderMap::new(),
                Vec::new(),
                0,
                Some("timeout".to_owned()),
            ),
        };
        if let Some(kind) = &exception {
            self.stats.exception(kind);
        }
        self.stats.record(Sample {
            method: call.method.as_str(),
            endpoint,
            status,
            latency,
            bytes,
            error: !call.expect.accepts(status),
        });
        Ok(Answer {
            method: call.method.clone(),
            endpoint,
            status,
            headers,
            body,
            latency,
            exception,
        })
    }

    /// Opens a response to be read as a stream: the answer (headers only, recorded at their
    /// arrival) and the response, while holding a place among the requests in flight.
    pub async fn open(
        &self,
        session: &Session,
        call: &Call,
    ) -> Result<(Answer, Option<(Response, OwnedSemaphorePermit)>), Stopped> {
        let slot = self.slot().await?;
        let endpoint = call.endpoint();
        let started = Instant::now();
        let outcome = tokio::select! {
            () = self.cancel.cancelled() => return Err(Stopped),
            r = tokio::time::timeout(self.timeout, self.build(session, call).send()) => r,
        };
        let latency = started.elapsed();
        let (status, headers, resp, exception) = match outcome {
            Ok(Ok(resp)) => (
                resp.status().as_u16(),
                resp.headers().clone(),
                Some(resp),
                None,
            ),
            Ok(Err(e)) => (NO_ANSWER, HeaderMap::new(), None, Some(kind_of(&e))),
            Err(_) => (
                NO_ANSWER,
                HeaderMap::new(),
                None,
                Some("timeout".to_owned()),
            ),
        };
        if let Some(kind) = &exception {
            self.stats.exception(kind);
        }
        self.stats.record(Sample {
            method: call.method.as_str(),
            endpoint,
            status,
            latency,
            bytes: 0,
            error: !call.expect.accepts(status),
        });
        let answer = Answer {
            method: call.method.clone(),
            endpoint,
            status,
            headers,
            body: Vec::new(),
            latency,
            exception,
        };
        Ok((answer, resp.map(|r| (r, slot))))
    }

    /// The answer had the expected status but not the expected body.
    pub fn invalid(&self, answer: &Answer, reason: impl Into<String>) {
        self.stats
            .invalid(answer.method.as_str(), answer.endpoint, reason.into());
    }

    /// Sleeps `d`, or less if the run ends.
    pub async fn pause(&self, d: Duration) -> Result<(), Stopped> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(Stopped),
            () = tokio::time::sleep(d) => Ok(()),
        }
    }
}

/// Reads a body: whole (keeping the first [`KEEP_MAX`] bytes), or for an event stream, what
/// arrives within [`STREAM_PEEK`]. Returns the kept bytes and the number read.
async fn read_body(mut resp: Response) -> Result<(Vec<u8>, u64), reqwest::Error> {
    let stream = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let deadline = tokio::time::Instant::now() + STREAM_PEEK;
    let mut kept = Vec::new();
    let mut read = 0u64;
    loop {
        let chunk = if stream {
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(chunk) => chunk?,
                Err(_) => break,
            }
        } else {
            resp.chunk().await?
        };
        let Some(chunk) = chunk else { break };
        read += chunk.len() as u64;
        let room = KEEP_MAX.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok((kept, read))
}

fn kind_of(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    kind.to_owned()
}
