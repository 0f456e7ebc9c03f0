//! The execution aggregate: statuses, priorities, limits and results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lifecycle of an execution: `queued → scheduled → running → completed|failed|timeout|cancelled|error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Queued,
    Scheduled,
    Running,
    Completed,
    Failed,
    Timeout,
    Cancelled,
    Error,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::Queued,
        Self::Scheduled,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Timeout,
        Self::Cancelled,
        Self::Error,
    ];
    pub const ACTIVE: [ExecutionStatus; 3] = [Self::Queued, Self::Scheduled, Self::Running];

    pub fn is_terminal(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The contract's `ExecutionErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    SystemError,
    Timeout,
    ResourceLimit,
    ScriptError,
    PermissionDenied,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemError => "system_error",
            Self::Timeout => "timeout",
            Self::ResourceLimit => "resource_limit",
            Self::ScriptError => "script_error",
            Self::PermissionDenied => "permission_denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::SystemError,
            Self::Timeout,
            Self::ResourceLimit,
            Self::ScriptError,
            Self::PermissionDenied,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Queue priority, highest first. `rank` 0 is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Critical,
    High,
    #[default]
    Normal,
    Low,
    Background,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Self::Critical,
        Self::High,
        Self::Normal,
        Self::Low,
        Self::Background,
    ];

    pub fn rank(self) -> i64 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
            Self::Background => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
            Self::Background => "background",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Resource usage in the contract's shape (`ResourceUsage`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ResourceUsage {
    pub execution_time_wall_seconds: f64,
    pub cpu_time_jiffies: i64,
    pub clk_tck_hertz: i64,
    pub peak_memory_kb: i64,
}

/// Limits applied to one run. Filled from system settings at submit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RunLimits {
    pub timeout_seconds: u64,
    pub memory_bytes: u64,
    pub max_processes: u64,
    pub max_output_bytes: u64,
    /// CPU time budget over all processes of the run; `None`: only the wall timeout applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            timeout_seconds: 10,
            memory_bytes: 256 * 1024 * 1024,
            max_processes: 64,
            max_output_bytes: 1024 * 1024,
            cpu_time_ms: None,
        }
    }
}

/// The exit code of an execution that ended without its script exiting by itself: timed out,
/// cancelled, or ended by a system error (the original stores `-1` for these too). Runs killed by
/// a signal or a limit report `128 + signal` instead.
pub const NO_EXIT_CODE: i64 = -1;

/// A stored execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub execution_id: String,
    pub user_id: String,
    pub script: String,
    pub lang: String,
    pub lang_version: String,
    pub status: ExecutionStatus,
    pub priority: Priority,
    pub limits: RunLimits,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    /// Human-readable detail of the outcome (signal number, limit hit, infrastructure cause).
    pub error_message: Option<String>,
    pub resource_usage: Option<ResourceUsage>,
    pub idempotency_key: Option<String>,
    /// Data fed to the script's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Execution {
    /// The exit code clients see: `None` while the execution is active, then always a number
    /// ([`NO_EXIT_CODE`] when nothing exited, e.g. cancelled before its run).
    pub fn reported_exit_code(&self) -> Option<i64> {
        self.exit_code
            .or_else(|| self.status.is_terminal().then_some(NO_EXIT_CODE))
    }
}

/// What an execution ended with; written once by the result processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResultRecord {
    pub status: ExecutionStatus,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    pub error_message: Option<String>,
    pub resource_usage: Option<ResourceUsage>,
}

/// Filters and paging for listing executions.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this user's executions; `None` lists all (admin).
    pub user_id: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub priority: Option<Priority>,
    pub lang: Option<String>,
    /// Inclusive bounds on `updated_at`.
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub limit: u32,
    pub skip: u32,
}
