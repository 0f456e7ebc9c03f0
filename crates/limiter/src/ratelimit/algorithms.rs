//! The counting algorithms as plain state machines over an injected clock (milliseconds).
//! The Redis adapter runs the same algorithms as a Lua script (`src/redis/bucket.lua`): a
//! change here is made there too, and the shared conformance suite checks that they agree.

use std::collections::VecDeque;

use integr8s_core::ports::ratelimit::{LimitSpec, RateLimitAlgorithm};

/// What one step of an algorithm decided, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_at_ms: i64,
    pub retry_after_ms: i64,
}

pub fn window_ms(spec: &LimitSpec) -> i64 {
    i64::try_from(spec.window.as_millis())
        .unwrap_or(i64::MAX / 4)
        .max(1)
}

/// Token bucket capacity: `requests × burst`, at least 1.
pub fn capacity(spec: &LimitSpec) -> f64 {
    let burst = match spec.algorithm {
        RateLimitAlgorithm::LeakyBucket => 1.0,
        _ => spec.burst_multiplier.max(1.0),
    };
    (f64::from(spec.requests.max(1)) * burst).floor().max(1.0)
}

/// Requests allowed within the last window; refused requests are not recorded.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    hits: VecDeque<i64>,
}

impl SlidingWindow {
    fn prune(&mut self, now: i64, window: i64) {
        while self.hits.front().is_some_and(|&t| t <= now - window) {
            self.hits.pop_front();
        }
    }

    pub fn check(&mut self, spec: &LimitSpec, now: i64) -> Step {
        let window = window_ms(spec);
        let limit = spec.requests.max(1);
        self.prune(now, window);
        let used = u32::try_from(self.hits.len()).unwrap_or(u32::MAX);
        if used >= limit {
            let oldest = self.hits.front().copied().unwrap_or(now);
            return Step {
                allowed: false,
                limit,
                remaining: 0,
                reset_at_ms: self.hits.back().copied().unwrap_or(now) + window,
                retry_after_ms: (oldest + window - now).max(1),
            };
        }
        self.hits.push_back(now);
        Step {
            allowed: true,
            limit,
            remaining: limit - used - 1,
            reset_at_ms: now + window,
            retry_after_ms: 0,
        }
    }

    pub fn remaining(&self, spec: &LimitSpec, now: i64) -> u32 {
        let since = now - window_ms(spec);
        let used = self.hits.iter().filter(|&&t| t > since).count();
        spec.requests
            .max(1)
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// When the newest hit leaves the window.
    pub fn idle_after(&self, spec: &LimitSpec) -> i64 {
        self.hits.back().copied().unwrap_or(i64::MIN / 4) + window_ms(spec)
    }
}

/// Counts per window aligned on multiples of the window length.
#[derive(Debug, Default)]
pub struct FixedWindow {
    start: i64,
    count: u32,
}

impl FixedWindow {
    fn start_at(window: i64, now: i64) -> i64 {
        now - now.rem_euclid(window)
    }

    fn roll(&mut self, window: i64, now: i64) {
        let start = Self::start_at(window, now);
        if start != self.start {
            self.start = start;
            self.count = 0;
        }
    }

    pub fn check(&mut self, spec: &LimitSpec, now: i64) -> Step {
        let window = window_ms(spec);
        let limit = spec.requests.max(1);
        self.roll(window, now);
        let reset_at_ms = self.start + window;
        if self.count >= limit {
            return Step {
                allowed: false,
                limit,
                remaining: 0,
                reset_at_ms,
                retry_after_ms: (reset_at_ms - now).max(1),
            };
        }
        self.count += 1;
        Step {
            allowed: true,
            limit,
            remaining: limit - self.count,
            reset_at_ms,
            retry_after_ms: 0,
        }
    }

    pub fn remaining(&self, spec: &LimitSpec, now: i64) -> u32 {
        let count = if Self::start_at(window_ms(spec), now) == self.start {
            self.count
        } else {
            0
        };
        spec.requests.max(1).saturating_sub(count)
    }

    pub fn idle_after(&self, spec: &LimitSpec) -> i64 {
        self.start + window_ms(spec)
    }
}

/// Starts full at `capacity` tokens and refills `requests` tokens per window.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: i64,
}

impl TokenBucket {
    pub fn new(spec: &LimitSpec, now: i64) -> Self {
        Self {
            tokens: capacity(spec),
            last: now,
        }
    }

    /// Tokens per millisecond.
    fn rate(spec: &LimitSpec) -> f64 {
        f64::from(spec.requests.max(1)) / window_ms(spec) as f64
    }

    /// The tokens at `now`, refilled since the last step.
    fn refilled(&self, spec: &LimitSpec, now: i64) -> f64 {
        let elapsed = (now - self.last).max(0) as f64;
        (self.tokens + elapsed * Self::rate(spec)).min(capacity(spec))
    }

    fn refill(&mut self, spec: &LimitSpec, now: i64) {
        self.tokens = self.refilled(spec, now);
        self.last = self.last.max(now);
    }

    fn ms_until_full(&self, spec: &LimitSpec) -> i64 {
        ((capacity(spec) - self.tokens).max(0.0) / Self::rate(spec)).ceil() as i64
    }

    pub fn check(&mut self, spec: &LimitSpec, now: i64) -> Step {
        self.refill(spec, now);
        let limit = capacity(spec) as u32;
        if self.tokens < 1.0 {
            let wait = ((1.0 - self.tokens) / Self::rate(spec)).ceil() as i64;
            return Step {
                allowed: false,
                limit,
                remaining: 0,
                reset_at_ms: now + self.ms_until_full(spec),
                retry_after_ms: wait.max(1),
            };
        }
        self.tokens -= 1.0;
        Step {
            allowed: true,
            limit,
            remaining: self.tokens.floor() as u32,
            reset_at_ms: now + self.ms_until_full(spec),
            retry_after_ms: 0,
        }
    }

    pub fn remaining(&self, spec: &LimitSpec, now: i64) -> u32 {
        self.refilled(spec, now).floor() as u32
    }

    pub fn idle_after(&self, spec: &LimitSpec) -> i64 {
        self.last + self.ms_until_full(spec)
    }
}

/// The state of one bucket, by algorithm.
#[derive(Debug)]
pub enum Bucket {
    Sliding(SlidingWindow),
    Fixed(FixedWindow),
    Tokens(TokenBucket),
}

impl Bucket {
    pub fn new(spec: &LimitSpec, now: i64) -> Self {
        match spec.algorithm {
            RateLimitAlgorithm::SlidingWindow => Self::Sliding(SlidingWindow::default()),
            RateLimitAlgorithm::FixedWindow => Self::Fixed(FixedWindow::default()),
            RateLimitAlgorithm::TokenBucket | RateLimitAlgorithm::LeakyBucket => {
                Self::Tokens(TokenBucket::new(spec, now))
            }
        }
    }

    /// Whether this state was made for `algorithm` (a changed rule starts a fresh bucket).
    pub fn fits(&self, algorithm: RateLimitAlgorithm) -> bool {
        matches!(
            (self, algorithm),
            (Self::Sliding(_), RateLimitAlgorithm::SlidingWindow)
                | (Self::Fixed(_), RateLimitAlgorithm::FixedWindow)
                | (
                    Self::Tokens(_),
                    RateLimitAlgorithm::TokenBucket | RateLimitAlgorithm::LeakyBucket
                )
        )
    }

    pub fn check(&mut self, spec: &LimitSpec, now: i64) -> Step {
        match self {
            Self::Sliding(b) => b.check(spec, now),
            Self::Fixed(b) => b.check(spec, now),
            Self::Tokens(b) => b.check(spec, now),
        }
    }

    /// What the bucket allows at `now` (a read: nothing is counted or stored).
    pub fn remaining(&self, spec: &LimitSpec, now: i64) -> u32 {
        match self {
            Self::Sliding(b) => b.remaining(spec, now),
            Self::Fixed(b) => b.remaining(spec, now),
            Self::Tokens(b) => b.remaining(spec, now),
        }
    }

    /// From this instant on the bucket is back to its full allowance and can be dropped.
    pub fn idle_after(&self, spec: &LimitSpec) -> i64 {
        match self {
            Self::Sliding(b) => b.idle_after(spec),
            Self::Fixed(b) => b.idle_after(spec),
            Self::Tokens(b) => b.idle_after(spec),
        }
    }
}
