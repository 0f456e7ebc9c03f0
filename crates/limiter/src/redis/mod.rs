//! Redis adapters of the limiter and short-lived key ports, for several processes sharing one
//! Redis: [`RedisRateLimiter`] (the rate-limit algorithms as Lua scripts, atomic per check) and
//! [`RedisKeyValue`]. Both go through one [`RedisConnection`]: a connection manager that
//! reconnects by itself, opened lazily so that a process starts while Redis is down, and a key
//! prefix so that several deployments can share one Redis.
//!
//! Keys: `<prefix>rl:b:<bucket>` (a bucket's spec and state, a hash), `<prefix>rl:h:<bucket>` (a
//! sliding window's counted requests, a sorted set), `<prefix>kv:<key>` (short-lived values).

mod connection;
mod fail_open;
mod kv;
mod limiter;

pub use connection::{check_url, redact_url, RedisConfig, RedisConnection, RedisSetupError};
pub use kv::RedisKeyValue;
pub use limiter::RedisRateLimiter;
