//! The limiter and key/value conformance suites against every adapter: in memory, and in a
//! real redis-server started per test; then what only the Redis adapters do (key prefixes,
//! expiry of Redis keys, the script cache, failing open while Redis is away).

mod memory;
mod redis_adapters;
