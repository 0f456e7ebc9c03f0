//! The JSON answers of the replay-session routes (the contract's `ReplayResponse`,
//! `SessionSummary`, `ReplaySession` and `CleanupResponse`).

use chrono::{DateTime, Utc};
use integr8s_core::ports::replay::{
    ReplayConfig, ReplayError, ReplaySession, ReplayStatus, ReplayTarget, ReplayType,
};
use serde::Serialize;

/// The contract's `ReplayResponse`: the outcome of a create or a control.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ReplayResponse {
    pub session_id: String,
    pub status: ReplayStatus,
    pub message: String,
}

/// The contract's `SessionConfigSummary`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionConfigSummary {
    pub replay_type: ReplayType,
    pub target: ReplayTarget,
}

/// The contract's `SessionSummary`: one entry of the session list.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub config: SessionConfigSummary,
    pub status: ReplayStatus,
    pub total_events: u64,
    pub replayed_events: u64,
    pub failed_events: u64,
    pub skipped_events: u64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
}

fn duration_seconds(s: &ReplaySession) -> Option<f64> {
    let (start, end) = (s.started_at?, s.completed_at?);
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

impl From<&ReplaySession> for SessionSummary {
    fn from(s: &ReplaySession) -> Self {
        Self {
            session_id: s.session_id.clone(),
            config: SessionConfigSummary {
                replay_type: s.config.replay_type,
                target: s.config.target,
            },
            status: s.status,
            total_events: s.total_events,
            replayed_events: s.replayed_events,
            failed_events: s.failed_events,
            skipped_events: s.skipped_events,
            created_at: s.created_at,
            started_at: s.started_at,
            completed_at: s.completed_at,
            duration_seconds: duration_seconds(s),
        }
    }
}

/// The contract's `ReplaySession`: a session with its whole configuration and errors.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ReplaySession")]
pub struct ReplaySessionResponse {
    pub session_id: String,
    pub config: ReplayConfig,
    pub status: ReplayStatus,
    pub total_events: u64,
    pub replayed_events: u64,
    pub failed_events: u64,
    pub skipped_events: u64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub errors: Vec<ReplayError>,
}

impl From<ReplaySession> for ReplaySessionResponse {
    fn from(s: ReplaySession) -> Self {
        Self {
            session_id: s.session_id,
            config: s.config,
            status: s.status,
            total_events: s.total_events,
            replayed_events: s.replayed_events,
            failed_events: s.failed_events,
            skipped_events: s.skipped_events,
            created_at: s.created_at,
            started_at: s.started_at,
            completed_at: s.completed_at,
            last_event_at: s.last_event_at,
            errors: s.errors,
        }
    }
}

/// The contract's `CleanupResponse`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CleanupResponse {
    pub removed_sessions: u64,
    pub message: String,
}
