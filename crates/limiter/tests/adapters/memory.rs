//! The conformance suites against the in-memory adapters.

use std::sync::Arc;

use integr8s_core::ports::{KeyValue, RateLimiter};
use integr8s_core::testsuite::store::Fixture;
use integr8s_limiter::{MemoryKeyValue, MemoryRateLimiter};

async fn limiter() -> Fixture<dyn RateLimiter> {
    Fixture::new(Arc::new(MemoryRateLimiter::new()))
}

async fn key_value() -> Fixture<dyn KeyValue> {
    Fixture::new(Arc::new(MemoryKeyValue::new()))
}

mod rate_limiter {
    integr8s_core::rate_limiter_test_suite!(super::limiter());
}

mod key_value {
    integr8s_core::key_value_test_suite!(super::key_value());
}
