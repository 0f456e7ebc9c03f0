//! The shared connection: URL checks, the lazily opened connection manager, a bound on every
//! call, and the key prefix.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use integr8s_core::StoreError;
use thiserror::Error;

/// How long one call may take, connecting included, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the Redis adapters keep their keys.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket`.
    pub url: String,
    /// Put before every key, so that several deployments can share one Redis.
    pub key_prefix: String,
    /// Bound on one call, connecting included. A call past it fails (and a rate-limit check
    /// fails open).
    pub timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: key_prefix.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum RedisSetupError {
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
}

/// Checks that `url` names a Redis server this build can connect to (no I/O).
pub fn check_url(url: &str) -> Result<(), RedisSetupError> {
    Client::open(url)
        .map(drop)
        .map_err(|e| RedisSetupError::InvalidUrl(e.to_string()))
}

/// `url` with the password (the user info) replaced, for logs and printed configuration.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<redacted>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Why a call did not get an answer from Redis.
#[derive(Debug, Error)]
pub(crate) enum CallError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
}

impl From<CallError> for StoreError {
    fn from(e: CallError) -> Self {
        match &e {
            CallError::Redis(r) if !is_unreachable(r) => StoreError::Other(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Whether `e` says that Redis cannot be reached (as opposed to a refused command).
fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// One Redis, shared by the adapters. Cheap to clone.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl RedisConnection {
    /// Checks the URL; connects on first use, and after a failure again on the next call. Call
    /// within a Tokio runtime.
    pub fn open(config: &RedisConfig) -> Result<Self, RedisSetupError> {
        let invalid = |e: RedisError| RedisSetupError::InvalidUrl(e.to_string());
        let client = Client::open(config.url.as_str()).map_err(invalid)?;
        let timeout = config.timeout;
        // One quick attempt per reconnect: while Redis is away, calls fail at once (and the
        // next call tries again) instead of queueing behind a long back-off.
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_max_delay(timeout)
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(invalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                prefix: config.key_prefix.clone(),
                timeout,
            }),
        })
    }

    /// Answers whether Redis is reachable now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|mut c| async move { ::redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    /// `name` under this deployment's prefix.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    /// Runs `f` on the connection (connecting first if need be) within the timeout. When the
    /// connection turns out to be lost, the manager starts a new one and `f` runs once more on
    /// it, so the first call after Redis is back already gets an answer.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, CallError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let timeout = self.inner.timeout;
        let attempts = async {
            match f(self.inner.manager.clone()).await {
                Err(e) if e.is_io_error() || e.is_unrecoverable_error() => {
                    f(self.inner.manager.clone()).await
                }
                answered => answered,
            }
        };
        tokio::time::timeout(timeout, attempts)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
            .map_err(CallError::from)
    }
}

/// `s` as a literal in a `SCAN ... MATCH` pattern.
pub(crate) fn glob_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every key matching `pattern`, each once.
pub(crate) async fn scan(
    conn: &RedisConnection,
    pattern: String,
) -> Result<Vec<String>, CallError> {
    let pattern = &pattern;
    conn.call(|mut c| async move {
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_redacted() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("redis+unix:///run/redis.sock").is_ok());
        assert!(check_url("http://127.0.0.1:6379").is_err());
        assert!(check_url("not a url").is_err());
        assert_eq!(
            redact_url("redis://app:s3cret@cache:6379/2"),
            "redis://<redacted>@cache:6379/2"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        let debug = format!("{:?}", RedisConfig::new("redis://:pw@h:1", "p:"));
        assert!(!debug.contains("pw"), "{debug}");
    }

    #[test]
    fn glob_patterns_match_literally() {
        assert_eq!(
            glob_literal(r"ip:1:^/api/v1/.*[x]?\"),
            r"ip:1:^/api/v1/.\*\[x\]\?\\"
        );
    }
}
