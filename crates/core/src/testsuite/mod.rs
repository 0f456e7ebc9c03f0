//! Conformance suites: one per port, run against every adapter.

pub mod bus;
pub mod executor;
pub mod kv;
pub mod ratelimit;
pub mod store;
