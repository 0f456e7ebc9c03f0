//! The execution saga's persisted state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::EventPayload;

pub const EXECUTION_SAGA: &str = "execution_saga";

/// The execution saga's steps that have a compensation, with its name.
pub const COMPENSATIONS: [(&str, &str); 2] = [
    ("allocate_resources", "release_resources"),
    ("create_pod", "delete_pod"),
];

/// The compensation of a step, if it has one.
pub fn compensation_of(step: &str) -> Option<&'static str> {
    COMPENSATIONS
        .iter()
        .find(|(s, _)| *s == step)
        .map(|(_, c)| *c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SagaState {
    Created,
    Running,
    Compensating,
    Completed,
    Failed,
    Timeout,
    Cancelled,
}

impl SagaState {
    pub const ALL: [SagaState; 7] = [
        Self::Created,
        Self::Running,
        Self::Compensating,
        Self::Completed,
        Self::Failed,
        Self::Timeout,
        Self::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Timeout | Self::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Compensating => "compensating",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One saga instance with its step log. `context` holds the step data (allocation id, flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saga {
    pub saga_id: String,
    pub saga_name: String,
    pub execution_id: String,
    pub user_id: String,
    pub state: SagaState,
    pub current_step: Option<String>,
    pub completed_steps: Vec<String>,
    pub compensated_steps: Vec<String>,
    pub context: serde_json::Value,
    pub error_message: Option<String>,
    pub retry_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Saga {
    pub fn new(execution_id: &str, user_id: &str) -> Self {
        let now = crate::now();
        Self {
            saga_id: crate::new_id(),
            saga_name: EXECUTION_SAGA.to_owned(),
            execution_id: execution_id.to_owned(),
            user_id: user_id.to_owned(),
            state: SagaState::Created,
            current_step: None,
            completed_steps: Vec::new(),
            compensated_steps: Vec::new(),
            context: serde_json::Value::Object(Default::default()),
            error_message: None,
            retry_count: 0,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }

    /// Ends the saga as cancelled and returns its `saga_cancelled` payload. Its completed steps
    /// count as undone, latest first: the run is stopped and the allocation released with the
    /// execution itself. The caller saves the saga (which a terminal saga refuses).
    pub fn cancel(&mut self, reason: String, by: String) -> EventPayload {
        for step in self.completed_steps.clone().iter().rev() {
            if let Some(undo) = compensation_of(step) {
                if !self.compensated_steps.iter().any(|s| s == undo) {
                    self.compensated_steps.push(undo.to_owned());
                }
            }
        }
        let now = crate::now();
        self.state = SagaState::Cancelled;
        self.error_message = Some(reason.clone());
        self.current_step = None;
        self.completed_at = Some(now);
        self.updated_at = now;
        EventPayload::SagaCancelled {
            saga_id: self.saga_id.clone(),
            saga_name: self.saga_name.clone(),
            execution_id: self.execution_id.clone(),
            reason,
            completed_steps: self.completed_steps.clone(),
            compensated_steps: self.compensated_steps.clone(),
            cancelled_at: Some(now),
            cancelled_by: Some(by),
        }
    }
}
