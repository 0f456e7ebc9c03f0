//! Per-user quotas: how much one account may keep (saved scripts, custom settings,
//! subscription filters) and how many of its executions may wait. Sizes past a cap answer 422
//! in the validation shape; counts past a cap answer 403 (`QuotaExceededError`), and waiting
//! executions past theirs 429 with `Retry-After`, like a full queue.

use axum::http::StatusCode;

use crate::error::{ApiError, ValidationIssue};

/// The caps, filled by the server from `[quotas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Saved scripts per user.
    pub max_saved_scripts: u64,
    /// Bytes of one saved script's text.
    pub max_saved_script_bytes: usize,
    /// Keys of a user's custom settings.
    pub max_custom_settings: usize,
    /// Bytes of one custom setting's value (as JSON).
    pub max_custom_setting_bytes: usize,
    /// Tags in each of a subscription's tag filters.
    pub max_subscription_tags: usize,
    /// Queued executions per user (beyond: 429).
    pub max_pending_per_user: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_saved_scripts: 200,
            max_saved_script_bytes: 64 * 1024,
            max_custom_settings: 50,
            max_custom_setting_bytes: 4096,
            max_subscription_tags: 50,
            max_pending_per_user: 100,
        }
    }
}

/// Seconds a client is told to wait when its own queue is full.
pub const PENDING_RETRY_AFTER_SECS: u64 = 10;

/// 403 for a count quota: `what` names the things counted ("saved scripts").
pub fn count_exceeded(max: u64, what: &str) -> ApiError {
    ApiError::domain(
        StatusCode::FORBIDDEN,
        "QuotaExceededError",
        format!("Quota exceeded: at most {max} {what} per user; delete some first"),
    )
}

/// A 422 issue for a value larger than its cap, in bytes.
pub fn too_large(loc: &[&str], max: usize) -> ValidationIssue {
    ValidationIssue::new(
        loc,
        "too_large",
        format!("Value should have at most {max} bytes"),
    )
}

/// 429 for a user whose queued executions reached the cap.
pub fn pending_exceeded(max: u64) -> ApiError {
    ApiError::TooManyRequests {
        kind: "QuotaExceededError",
        detail: format!(
            "You have {max} executions waiting, the most one user may queue; retry when some have started"
        ),
        retry_after_secs: PENDING_RETRY_AFTER_SECS,
    }
}
