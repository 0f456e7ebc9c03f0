//! Shared state of the HTTP layer: the ports it talks to and its configuration.

use std::sync::Arc;
use std::time::Instant;

use integr8s_core::effective_settings::EffectiveSettings;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::{EventBus, KeyValue, Store};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::RunLimits;

use crate::auth::guard::AuthLimits;
use crate::client_ip::IpNet;
use crate::quotas::Quotas;
use crate::ratelimit::RateLimits;
use crate::streams::{StreamHub, StreamLimits};

/// Settings of the API, filled by the server from its configuration. What an admin can change
/// at run time (session lifetime, lockout, password length, default limits, concurrency) is not
/// here but in [`AppState::settings`].
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// At least 32 bytes: the JWT HS256 key and the CSRF HMAC key.
    pub secret: Vec<u8>,
    /// Adds `Secure` to the session cookies (HTTPS deployments).
    pub cookie_secure: bool,
    /// Applied to every new execution.
    pub run_limits: RunLimits,
    /// Pending queue entries at which new submissions are refused with 429.
    pub max_queue_length: u64,
    pub cpu_request: String,
    pub memory_request: String,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Accept `http://` webhook and Slack URLs on loopback hosts (local testing only).
    pub allow_insecure_webhooks: bool,
    /// Whether requests are rate limited (`rate_limit.enabled`).
    pub rate_limit_enabled: bool,
    /// Origins allowed to call the API with credentials (`server.cors_origins`).
    pub cors_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed (`server.trusted_proxies`).
    pub trusted_proxies: Vec<IpNet>,
    /// Cap of a request's `cpu_time_seconds` (`execution.max_cpu_time_seconds`).
    pub max_cpu_time_seconds: u64,
    /// Cap of a request's `stdin`, in bytes (`execution.max_stdin_bytes`).
    pub max_stdin_bytes: usize,
    /// Throttles of login and register and the cap of password hashes at once (`auth.*`).
    pub auth_limits: AuthLimits,
    /// When set, `GET /metrics` wants `Authorization: Bearer <token>` (`metrics.token`).
    pub metrics_token: Option<String>,
    /// Per-user quotas (`quotas.*`).
    pub quotas: Quotas,
    /// Limits of the event streams (`streams.*`).
    pub streams: StreamLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            secret: Vec::new(),
            cookie_secure: false,
            run_limits: RunLimits::default(),
            max_queue_length: 10_000,
            cpu_request: "100m".to_owned(),
            memory_request: "128Mi".to_owned(),
            max_body_bytes: 10 * 1024 * 1024,
            allow_insecure_webhooks: false,
            rate_limit_enabled: true,
            cors_origins: Vec::new(),
            trusted_proxies: IpNet::loopback(),
            max_cpu_time_seconds: 300,
            max_stdin_bytes: 1024 * 1024,
            auth_limits: AuthLimits::default(),
            metrics_token: None,
            quotas: Quotas::default(),
            streams: StreamLimits::default(),
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The system settings in force (stored, else the configuration's defaults).
    pub settings: EffectiveSettings,
    pub bus: Arc<dyn EventBus>,
    pub outbox: Outbox,
    pub kv: Arc<dyn KeyValue>,
    /// The runtime definitions; which versions can run comes from the workers' leases
    /// ([`crate::workers`]), and this registry's own availability only while no worker is live.
    pub registry: Arc<RuntimeRegistry>,
    /// The runtimes the live workers report, cached briefly for submissions.
    pub workers: crate::workers::WorkerView,
    pub config: Arc<ApiConfig>,
    pub started_at: Instant,
    /// Rate limiting: rules, override cache and the counters.
    pub rate_limits: RateLimits,
    /// Routes bus and store events to the open event streams and counts them.
    pub streams: StreamHub,
}
