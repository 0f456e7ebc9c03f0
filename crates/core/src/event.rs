//! Typed domain events with the original system's names and payloads, and their envelope.
//!
//! On the wire an event is one flat JSON object: the envelope fields (`event_id`, `event_type`,
//! `event_version`, `timestamp`, `aggregate_id`, `metadata`) next to the payload's own fields,
//! exactly as the contract's `*Event` schemas show them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::execution::{ErrorType, Priority, ResourceUsage, RunLimits};

macro_rules! event_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Every event type of the system (the original's 57 names). One bus topic per type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum EventType { $($variant),+ }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(EventType::$variant),)+ _ => None }
            }
        }
    };
}

event_types! {
    ExecutionRequested => "execution_requested",
    ExecutionAccepted => "execution_accepted",
    ExecutionQueued => "execution_queued",
    ExecutionStarted => "execution_started",
    ExecutionRunning => "execution_running",
    ExecutionCompleted => "execution_completed",
    ExecutionFailed => "execution_failed",
    ExecutionTimeout => "execution_timeout",
    ExecutionCancelled => "execution_cancelled",
    PodCreated => "pod_created",
    PodScheduled => "pod_scheduled",
    PodRunning => "pod_running",
    PodSucceeded => "pod_succeeded",
    PodFailed => "pod_failed",
    PodTerminated => "pod_terminated",
    PodDeleted => "pod_deleted",
    UserRegistered => "user_registered",
    UserLogin => "user_login",
    UserLoggedIn => "user_logged_in",
    UserLoggedOut => "user_logged_out",
    UserUpdated => "user_updated",
    UserDeleted => "user_deleted",
    UserSettingsUpdated => "user_settings_updated",
    NotificationCreated => "notification_created",
    NotificationSent => "notification_sent",
    NotificationDelivered => "notification_delivered",
    NotificationFailed => "notification_failed",
    NotificationRead => "notification_read",
    NotificationAllRead => "notification_all_read",
    NotificationClicked => "notification_clicked",
    NotificationPreferencesUpdated => "notification_preferences_updated",
    ScriptSaved => "script_saved",
    ScriptDeleted => "script_deleted",
    ScriptShared => "script_shared",
    SecurityViolation => "security_violation",
    RateLimitExceeded => "rate_limit_exceeded",
    AuthFailed => "auth_failed",
    ResourceLimitExceeded => "resource_limit_exceeded",
    QuotaExceeded => "quota_exceeded",
    SystemError => "system_error",
    ServiceUnhealthy => "service_unhealthy",
    ServiceRecovered => "service_recovered",
    ResultStored => "result_stored",
    ResultFailed => "result_failed",
    SagaStarted => "saga_started",
    SagaCompleted => "saga_completed",
    SagaFailed => "saga_failed",
    SagaCancelled => "saga_cancelled",
    SagaCompensating => "saga_compensating",
    SagaCompensated => "saga_compensated",
    CreatePodCommand => "create_pod_command",
    DeletePodCommand => "delete_pod_command",
    AllocateResourcesCommand => "allocate_resources_command",
    ReleaseResourcesCommand => "release_resources_command",
    DlqMessageReceived => "dlq_message_received",
    DlqMessageRetried => "dlq_message_retried",
    DlqMessageDiscarded => "dlq_message_discarded",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventType {
    /// Events that end the execution pipeline for an execution (the SSE stream closes after them).
    /// A cancel gets no `result_stored` (as in the original), so `execution_cancelled` ends it.
    pub fn ends_pipeline(self) -> bool {
        matches!(
            self,
            EventType::ResultStored
                | EventType::ResultFailed
                | EventType::ExecutionFailed
                | EventType::ExecutionTimeout
                | EventType::ExecutionCancelled
        )
    }

    /// The run-outcome events a worker emits when a run ends.
    pub fn is_run_outcome(self) -> bool {
        matches!(
            self,
            EventType::ExecutionCompleted
                | EventType::ExecutionFailed
                | EventType::ExecutionTimeout
                | EventType::ExecutionCancelled
        )
    }
}

/// The `metadata` object of every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct EventMetadata {
    pub service_name: String,
    pub service_version: String,
    /// Absent (never `null`) when the event has no user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub user_id: Option<String>,
    /// Ties together the events caused by one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub correlation_id: Option<String>,
    #[serde(default = "default_environment")]
    pub environment: String,
    /// The W3C trace context of the span that emitted the event (integr8s extension), so the
    /// hop that handles it continues the same trace; absent when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub traceparent: Option<String>,
}

fn default_environment() -> String {
    "production".to_owned()
}

impl EventMetadata {
    /// Metadata for an event emitted now, in the trace of the current span (when tracing is on).
    pub fn new(service_name: &str, user_id: Option<String>) -> Self {
        Self {
            service_name: service_name.to_owned(),
            service_version: env!("CARGO_PKG_VERSION").to_owned(),
            user_id,
            correlation_id: None,
            environment: default_environment(),
            traceparent: integr8s_telemetry::trace::current_traceparent(),
        }
    }
}

/// Payload fields shared by the execution request and the start-run command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RunRequest {
    pub execution_id: String,
    pub script: String,
    pub language: String,
    pub language_version: String,
    pub runtime_image: String,
    pub runtime_command: Vec<String>,
    pub runtime_filename: String,
    pub timeout_seconds: u64,
    pub cpu_limit: String,
    pub memory_limit: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub priority: Priority,
    /// The full limits of the run (integr8s extension; the fields above keep the contract's shape).
    pub limits: RunLimits,
    /// Standard input of the run (integr8s extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// Output and usage carried by the run-outcome events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    pub resource_usage: Option<ResourceUsage>,
}

/// The contract's `ContainerStatusInfo`, as carried by `pod_running`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ContainerStatusInfo {
    pub name: String,
    pub ready: bool,
    pub restart_count: i64,
    pub state: String,
}

/// The payload of an event, tagged by `event_type`.
///
/// The `pod_*` events keep the contract's names and shapes. A local run has no Kubernetes pod:
/// there `pod_name` names the sandbox slot that ran it (see docs/pipeline.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum EventPayload {
    ExecutionRequested(RunRequest),
    ExecutionQueued {
        execution_id: String,
        position_in_queue: Option<i64>,
        estimated_start_time: Option<DateTime<Utc>>,
    },
    ExecutionAccepted {
        execution_id: String,
        queue_position: i64,
        estimated_wait_seconds: Option<f64>,
        priority: Priority,
    },
    ExecutionStarted {
        execution_id: String,
        pod_name: String,
        node_name: Option<String>,
        container_id: Option<String>,
    },
    ExecutionRunning {
        execution_id: String,
        pod_name: String,
        progress_percentage: Option<i64>,
    },
    ExecutionCompleted {
        execution_id: String,
        exit_code: i64,
        #[serde(flatten)]
        output: RunOutput,
    },
    ExecutionFailed {
        execution_id: String,
        exit_code: i64,
        error_type: ErrorType,
        #[serde(default)]
        error_message: Option<String>,
        #[serde(flatten)]
        output: RunOutput,
    },
    ExecutionTimeout {
        execution_id: String,
        timeout_seconds: u64,
        #[serde(flatten)]
        output: RunOutput,
    },
    ExecutionCancelled {
        execution_id: String,
        cancelled_by: String,
        force_terminated: bool,
        #[serde(default)]
        reason: Option<String>,
    },
    PodCreated {
        execution_id: String,
        pod_name: String,
        namespace: String,
    },
    PodScheduled {
        execution_id: String,
        pod_name: String,
        node_name: String,
    },
    PodRunning {
        execution_id: String,
        pod_name: String,
        container_statuses: Vec<ContainerStatusInfo>,
    },
    PodSucceeded {
        execution_id: String,
        pod_name: String,
        exit_code: i64,
        stdout: Option<String>,
        stderr: Option<String>,
    },
    PodFailed {
        execution_id: String,
        pod_name: String,
        exit_code: i64,
        reason: Option<String>,
        message: Option<String>,
        stdout: Option<String>,
        stderr: Option<String>,
    },
    PodTerminated {
        execution_id: String,
        pod_name: String,
        exit_code: i64,
        reason: Option<String>,
        message: Option<String>,
    },
    PodDeleted {
        execution_id: String,
        pod_name: String,
        reason: Option<String>,
    },
    ResultStored {
        execution_id: String,
        storage_type: Option<String>,
        storage_path: String,
        size_bytes: i64,
    },
    ResultFailed {
        execution_id: String,
        storage_type: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    SagaStarted {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        initial_event_id: String,
    },
    SagaCompleted {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        completed_steps: Vec<String>,
    },
    SagaFailed {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        failed_step: String,
        error: String,
    },
    SagaCancelled {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        reason: String,
        completed_steps: Vec<String>,
        compensated_steps: Vec<String>,
        cancelled_at: Option<DateTime<Utc>>,
        cancelled_by: Option<String>,
    },
    SagaCompensating {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        compensating_step: String,
    },
    SagaCompensated {
        saga_id: String,
        saga_name: String,
        execution_id: String,
        compensated_steps: Vec<String>,
    },
    CreatePodCommand {
        saga_id: String,
        #[serde(flatten)]
        run: RunRequest,
    },
    DeletePodCommand {
        saga_id: String,
        execution_id: String,
        reason: String,
        pod_name: Option<String>,
        namespace: Option<String>,
    },
    UserRegistered {
        user_id: String,
        username: String,
        email: String,
    },
    UserLoggedIn {
        user_id: String,
        login_method: String,
        ip_address: Option<String>,
        user_agent: Option<String>,
    },
    UserLoggedOut {
        user_id: String,
        logout_reason: Option<String>,
    },
    AuthFailed {
        username: Option<String>,
        reason: String,
        ip_address: Option<String>,
    },
    /// A consumer group's handler failed on an event too often; the event is in the DLQ. The
    /// envelope's aggregate id is the DLQ message id, `dlq_event_id` the original event's id.
    DlqMessageReceived {
        dlq_event_id: String,
        original_topic: String,
        original_event_type: EventType,
        error: String,
        retry_count: u32,
        producer_id: String,
        failed_at: DateTime<Utc>,
    },
    /// A DLQ message was handed back to its consumer group (`retry_topic` names the group).
    DlqMessageRetried {
        dlq_event_id: String,
        original_topic: String,
        original_event_type: EventType,
        retry_count: u32,
        retry_topic: String,
    },
    /// A DLQ message was given up (retries exhausted, too old, or discarded by an admin).
    DlqMessageDiscarded {
        dlq_event_id: String,
        original_topic: String,
        original_event_type: EventType,
        reason: String,
        retry_count: u32,
    },
    ScriptSaved {
        script_id: String,
        user_id: String,
        title: String,
        language: String,
    },
    ScriptDeleted {
        script_id: String,
        user_id: String,
        deleted_by: Option<String>,
    },
    /// A settings change; `changes` carries each changed value with its old and new value.
    UserSettingsUpdated {
        user_id: String,
        changed_fields: Vec<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        changes: Vec<crate::user_settings::SettingChange>,
    },
    /// A notification was stored; `channels` are the channels it goes out on.
    NotificationCreated {
        notification_id: String,
        user_id: String,
        subject: String,
        body: String,
        severity: crate::notification::NotificationSeverity,
        tags: Vec<String>,
        channels: Vec<crate::notification::NotificationChannel>,
    },
}

impl EventPayload {
    /// Roughly the memory this payload holds: a fixed part for its small fields plus its
    /// texts of unbounded size (script, standard input, output, messages). Buffers of events
    /// bound themselves by it, so that a few runs with large outputs cannot fill memory.
    pub fn approx_bytes(&self) -> usize {
        const FIXED: usize = 512;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let output = |o: &RunOutput| o.stdout.len() + o.stderr.len();
        FIXED
            + match self {
                EventPayload::ExecutionRequested(run) => run.script.len() + text(&run.stdin),
                EventPayload::ExecutionCompleted { output: o, .. }
                | EventPayload::ExecutionTimeout { output: o, .. } => output(o),
                EventPayload::ExecutionFailed {
                    output: o,
                    error_message,
                    ..
                } => output(o) + text(error_message),
                EventPayload::PodSucceeded { stdout, stderr, .. } => text(stdout) + text(stderr),
                EventPayload::PodFailed {
                    stdout,
                    stderr,
                    message,
                    ..
                } => text(stdout) + text(stderr) + text(message),
                EventPayload::ResultFailed { error, .. } => text(error),
                EventPayload::SagaFailed { error, .. } => error.len(),
                _ => 0,
            }
    }

    pub fn event_type(&self) -> EventType {
        match self {
            EventPayload::ExecutionRequested(_) => EventType::ExecutionRequested,
            EventPayload::ExecutionQueued { .. } => EventType::ExecutionQueued,
            EventPayload::ExecutionAccepted { .. } => EventType::ExecutionAccepted,
            EventPayload::ExecutionStarted { .. } => EventType::ExecutionStarted,
            EventPayload::ExecutionRunning { .. } => EventType::ExecutionRunning,
            EventPayload::ExecutionCompleted { .. } => EventType::ExecutionCompleted,
            EventPayload::ExecutionFailed { .. } => EventType::ExecutionFailed,
            EventPayload::ExecutionTimeout { .. } => EventType::ExecutionTimeout,
            EventPayload::ExecutionCancelled { .. } => EventType::ExecutionCancelled,
            EventPayload::PodCreated { .. } => EventType::PodCreated,
            EventPayload::PodScheduled { .. } => EventType::PodScheduled,
            EventPayload::PodRunning { .. } => EventType::PodRunning,
            EventPayload::PodSucceeded { .. } => EventType::PodSucceeded,
            EventPayload::PodFailed { .. } => EventType::PodFailed,
            EventPayload::PodTerminated { .. } => EventType::PodTerminated,
            EventPayload::PodDeleted { .. } => EventType::PodDeleted,
            EventPayload::ResultStored { .. } => EventType::ResultStored,
            EventPayload::ResultFailed { .. } => EventType::ResultFailed,
            EventPayload::SagaStarted { .. } => EventType::SagaStarted,
            EventPayload::SagaCompleted { .. } => EventType::SagaCompleted,
            EventPayload::SagaFailed { .. } => EventType::SagaFailed,
            EventPayload::SagaCancelled { .. } => EventType::SagaCancelled,
            EventPayload::SagaCompensating { .. } => EventType::SagaCompensating,
            EventPayload::SagaCompensated { .. } => EventType::SagaCompensated,
            EventPayload::CreatePodCommand { .. } => EventType::CreatePodCommand,
            EventPayload::DeletePodCommand { .. } => EventType::DeletePodCommand,
            EventPayload::UserRegistered { .. } => EventType::UserRegistered,
            EventPayload::UserLoggedIn { .. } => EventType::UserLoggedIn,
            EventPayload::UserLoggedOut { .. } => EventType::UserLoggedOut,
            EventPayload::AuthFailed { .. } => EventType::AuthFailed,
            EventPayload::DlqMessageReceived { .. } => EventType::DlqMessageReceived,
            EventPayload::DlqMessageRetried { .. } => EventType::DlqMessageRetried,
            EventPayload::DlqMessageDiscarded { .. } => EventType::DlqMessageDiscarded,
            EventPayload::ScriptSaved { .. } => EventType::ScriptSaved,
            EventPayload::ScriptDeleted { .. } => EventType::ScriptDeleted,
            EventPayload::UserSettingsUpdated { .. } => EventType::UserSettingsUpdated,
            EventPayload::NotificationCreated { .. } => EventType::NotificationCreated,
        }
    }

    /// The execution this event belongs to, when it belongs to one.
    pub fn execution_id(&self) -> Option<&str> {
        match self {
            EventPayload::ExecutionRequested(r) => Some(&r.execution_id),
            EventPayload::CreatePodCommand { run, .. } => Some(&run.execution_id),
            EventPayload::ExecutionQueued { execution_id, .. }
            | EventPayload::ExecutionAccepted { execution_id, .. }
            | EventPayload::ExecutionStarted { execution_id, .. }
            | EventPayload::ExecutionRunning { execution_id, .. }
            | EventPayload::ExecutionCompleted { execution_id, .. }
            | EventPayload::ExecutionFailed { execution_id, .. }
            | EventPayload::ExecutionTimeout { execution_id, .. }
            | EventPayload::ExecutionCancelled { execution_id, .. }
            | EventPayload::PodCreated { execution_id, .. }
            | EventPayload::PodScheduled { execution_id, .. }
            | EventPayload::PodRunning { execution_id, .. }
            | EventPayload::PodSucceeded { execution_id, .. }
            | EventPayload::PodFailed { execution_id, .. }
            | EventPayload::PodTerminated { execution_id, .. }
            | EventPayload::PodDeleted { execution_id, .. }
            | EventPayload::ResultStored { execution_id, .. }
            | EventPayload::ResultFailed { execution_id, .. }
            | EventPayload::SagaStarted { execution_id, .. }
            | EventPayload::SagaCompleted { execution_id, .. }
            | EventPayload::SagaFailed { execution_id, .. }
            | EventPayload::SagaCancelled { execution_id, .. }
            | EventPayload::SagaCompensating { execution_id, .. }
            | EventPayload::SagaCompensated { execution_id, .. }
            | EventPayload::DeletePodCommand { execution_id, .. } => Some(execution_id),
            EventPayload::UserRegistered { .. }
            | EventPayload::UserLoggedIn { .. }
            | EventPayload::UserLoggedOut { .. }
            | EventPayload::AuthFailed { .. }
            | EventPayload::DlqMessageReceived { .. }
            | EventPayload::DlqMessageRetried { .. }
            | EventPayload::DlqMessageDiscarded { .. }
            | EventPayload::ScriptSaved { .. }
            | EventPayload::ScriptDeleted { .. }
            | EventPayload::UserSettingsUpdated { .. }
            | EventPayload::NotificationCreated { .. } => None,
        }
    }
}

/// An event with its envelope. Serialises flat, as the contract's event schemas do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schemars", schemars(rename = "DomainEvent"))]
pub struct Envelope {
    pub event_id: String,
    pub event_version: String,
    pub timestamp: DateTime<Utc>,
    /// Partition key: the execution id for execution events, the user id for user events.
    pub aggregate_id: Option<String>,
    pub metadata: EventMetadata,
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl Envelope {
    /// A new envelope; the aggregate id defaults to the payload's execution id.
    pub fn new(payload: EventPayload, metadata: EventMetadata) -> Self {
        let aggregate_id = payload.execution_id().map(str::to_owned);
        Self {
            event_id: crate::new_id(),
            event_version: "1.0".to_owned(),
            timestamp: crate::now(),
            aggregate_id,
            metadata,
            payload,
        }
    }

    pub fn with_aggregate(mut self, aggregate_id: impl Into<String>) -> Self {
        self.aggregate_id = Some(aggregate_id.into());
        self
    }

    pub fn with_correlation(mut self, correlation_id: Option<String>) -> Self {
        self.metadata.correlation_id = correlation_id;
        self
    }

    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    pub fn execution_id(&self) -> Option<&str> {
        self.payload.execution_id()
    }
}

/// An envelope as kept by the event store, with its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Strictly increasing position in the event store's log (1-based).
    pub seq: i64,
    pub envelope: Envelope,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        assert_eq!(EventType::ALL.len(), 57);
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }

    #[test]
    fn envelope_serialises_flat_like_the_contract() {
        let env = Envelope::new(
            EventPayload::ExecutionCompleted {
                execution_id: "e1".into(),
                exit_code: 3,
                output: RunOutput {
                    stdout: "hi\n".into(),
                    stderr: String::new(),
                    resource_usage: Some(ResourceUsage::default()),
                },
            },
            EventMetadata::new("test", Some("u1".into())),
        );
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["event_type"], "execution_completed");
        assert_eq!(v["execution_id"], "e1");
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["stdout"], "hi\n");
        assert_eq!(v["aggregate_id"], "e1");
        assert_eq!(v["metadata"]["user_id"], "u1");
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, env);
    }
}
