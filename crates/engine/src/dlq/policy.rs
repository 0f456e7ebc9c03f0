//! Retry policies per event category, with exponential back-off and ±10 % jitter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use integr8s_core::event::EventType;

/// How often and how fast a dead-lettered event is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub name: &'static str,
    /// Retries before the message is discarded.
    pub max_retries: u32,
    /// Delay before the first retry; zero retries at once.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    pub multiplier: f64,
}

impl RetryPolicy {
    /// Execution events and commands: retried soon and often.
    pub const AGGRESSIVE: RetryPolicy = RetryPolicy {
        name: "aggressive",
        max_retries: 5,
        base: Duration::from_secs(30),
        max: Duration::from_secs(300),
        multiplier: 2.0,
    };
    /// Pod events: retried slowly.
    pub const CAUTIOUS: RetryPolicy = RetryPolicy {
        name: "cautious",
        max_retries: 3,
        base: Duration::from_secs(60),
        max: Duration::from_secs(600),
        multiplier: 3.0,
    };
    /// Result events: retried at once.
    pub const IMMEDIATE: RetryPolicy = RetryPolicy {
        name: "immediate",
        max_retries: 3,
        base: Duration::ZERO,
        max: Duration::ZERO,
        multiplier: 1.0,
    };
    /// Everything else.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        name: "default",
        max_retries: 4,
        base: Duration::from_secs(60),
        max: Duration::from_secs(1800),
        multiplier: 2.5,
    };

    /// The delay before retry number `retry_count + 1`, before jitter:
    /// `min(base * multiplier^retry_count, max)`.
    pub fn base_delay(&self, retry_count: u32) -> Duration {
        let exp = i32::try_from(retry_count).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exp);
        let capped = secs.min(self.max.as_secs_f64());
        if capped.is_finite() && capped > 0.0 {
            Duration::from_secs_f64(capped)
        } else {
            Duration::ZERO
        }
    }

    /// The delay with jitter: `base_delay` scaled by a factor in [0.9, 1.1] drawn from `sample`.
    pub fn delay(&self, retry_count: u32, sample: u64) -> Duration {
        self.base_delay(retry_count).mul_f64(jitter_factor(sample))
    }
}

/// Maps a uniformly random `sample` onto [0.9, 1.1].
pub fn jitter_factor(sample: u64) -> f64 {
    0.9 + 0.2 * (sample as f64 / u64::MAX as f64)
}

/// A random sample for [`RetryPolicy::delay`] (each `RandomState` is freshly keyed).
pub fn random_sample() -> u64 {
    RandomState::new().hash_one(integr8s_core::now().timestamp_subsec_nanos())
}

/// The policy of an event type's category.
pub fn retry_policy_for(event_type: EventType) -> RetryPolicy {
    let name = event_type.as_str();
    if name.starts_with("pod_") {
        RetryPolicy::CAUTIOUS
    } else if name.starts_with("result_") {
        RetryPolicy::IMMEDIATE
    } else if name.starts_with("execution_") || name.ends_with("_command") {
        RetryPolicy::AGGRESSIVE
    } else {
        RetryPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_pick_their_policy() {
        assert_eq!(
            retry_policy_for(EventType::ExecutionRequested),
            RetryPolicy::AGGRESSIVE
        );
        assert_eq!(
            retry_policy_for(EventType::CreatePodCommand),
            RetryPolicy::AGGRESSIVE
        );
        assert_eq!(
            retry_policy_for(EventType::PodRunning),
            RetryPolicy::CAUTIOUS
        );
        assert_eq!(
            retry_policy_for(EventType::ResultStored),
            RetryPolicy::IMMEDIATE
        );
        assert_eq!(
            retry_policy_for(EventType::UserLoggedIn),
            RetryPolicy::DEFAULT
        );
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy::AGGRESSIVE;
        let secs: Vec<u64> = (0..6).map(|n| p.base_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 300, 300]);
        let d = RetryPolicy::DEFAULT;
        assert_eq!(d.base_delay(1).as_secs(), 150);
        assert_eq!(d.base_delay(10).as_secs(), 1800);
        assert_eq!(RetryPolicy::IMMEDIATE.delay(2, u64::MAX), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        assert!((jitter_factor(0) - 0.9).abs() < 1e-9);
        assert!((jitter_factor(u64::MAX) - 1.1).abs() < 1e-9);
        let p = RetryPolicy::CAUTIOUS;
        for _ in 0..100 {
            let d = p.delay(1, random_sample()).as_secs_f64();
            assert!((162.0..=198.0).contains(&d), "{d}");
        }
    }
}
