//! Row decoders and column lists shared by the SQLite and PostgreSQL adapters: both schemas use
//! the same table and column names, so one decoder per domain type reads either dialect's rows.

/// Users.
pub(crate) mod users {
    use integr8s_core::user::{Role, User};
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_ts, Columns};

    pub(crate) const COLUMNS: &str = "user_id, username, email, password_hash, role, is_active, \
         is_superuser, created_at, updated_at";

    pub(crate) fn decode(row: &impl Columns) -> Result<User, StoreError> {
        Ok(User {
            user_id: col(row, "user_id")?,
            username: col(row, "username")?,
            email: col(row, "email")?,
            password_hash: col(row, "password_hash")?,
            role: col_enum(row, "role", Role::parse)?,
            is_active: col(row, "is_active")?,
            is_superuser: col(row, "is_superuser")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }
}

/// Executions.
pub(crate) mod executions {
    use integr8s_core::{
        ErrorType, Execution, ExecutionStatus, Priority, ResourceUsage, RunLimits, StoreError,
    };

    use crate::codec::{col, col_enum, col_ts, to_u64, Columns};

    pub(crate) const COLUMNS: &str = "execution_id, user_id, script, lang, lang_version, status, \
         priority, timeout_seconds, memory_bytes, max_processes, max_output_bytes, stdout, stderr, \
         exit_code, error_type, error_message, wall_seconds, cpu_time_jiffies, clk_tck_hertz, \
         peak_memory_kb, idempotency_key, created_at, updated_at, cpu_time_ms, stdin";

    pub(crate) fn decode(row: &impl Columns) -> Result<Execution, StoreError> {
        let limits = RunLimits {
            timeout_seconds: to_u64(col(row, "timeout_seconds")?, "timeout_seconds")?,
            memory_bytes: to_u64(col(row, "memory_bytes")?, "memory_bytes")?,
            max_processes: to_u64(col(row, "max_processes")?, "max_processes")?,
            max_output_bytes: to_u64(col(row, "max_output_bytes")?, "max_output_bytes")?,
            cpu_time_ms: col::<Option<i64>>(row, "cpu_time_ms")?
                .map(|v| to_u64(v, "cpu_time_ms"))
                .transpose()?,
        };
        let wall: Option<f64> = col(row, "wall_seconds")?;
        let resource_usage = match wall {
            None => None,
            Some(execution_time_wall_seconds) => Some(ResourceUsage {
                execution_time_wall_seconds,
                cpu_time_jiffies: col::<Option<i64>>(row, "cpu_time_jiffies")?.unwrap_or(0),
                clk_tck_hertz: col::<Option<i64>>(row, "clk_tck_hertz")?.unwrap_or(0),
                peak_memory_kb: col::<Option<i64>>(row, "peak_memory_kb")?.unwrap_or(0),
            }),
        };
        let error_type = col::<Option<String>>(row, "error_type")?
            .map(|s| {
                ErrorType::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown error_type {s:?}")))
            })
            .transpose()?;
        Ok(Execution {
            execution_id: col(row, "execution_id")?,
            user_id: col(row, "user_id")?,
            script: col(row, "script")?,
            lang: col(row, "lang")?,
            lang_version: col(row, "lang_version")?,
            status: col_enum(row, "status", ExecutionStatus::parse)?,
            priority: col_enum(row, "priority", Priority::parse)?,
            limits,
            stdout: col(row, "stdout")?,
            stderr: col(row, "stderr")?,
            exit_code: col(row, "exit_code")?,
            error_type,
            error_message: col(row, "error_message")?,
            resource_usage,
            idempotency_key: col(row, "idempotency_key")?,
            stdin: col(row, "stdin")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }
}

/// Events of the log: `seq, body` rows.
pub(crate) mod events {
    use integr8s_core::StoreError;
    use integr8s_core::{Envelope, StoredEvent};

    use crate::codec::{col, Columns};

    /// Decodes a `seq, body` row of `events`.
    pub(crate) fn decode_event(row: &impl Columns) -> Result<StoredEvent, StoreError> {
        let seq: i64 = col(row, "seq")?;
        let body: String = col(row, "body")?;
        let envelope: Envelope = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
        Ok(StoredEvent { seq, envelope })
    }
}

/// Queue entries.
pub(crate) mod queue {
    use integr8s_core::ports::QueueEntry;
    use integr8s_core::Priority;
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_opt_ts, col_ts, Columns};

    pub(crate) const COLUMNS: &str = "execution_id, user_id, priority, enqueued_at, active_since";

    pub(crate) fn decode(row: &impl Columns) -> Result<QueueEntry, StoreError> {
        Ok(QueueEntry {
            execution_id: col(row, "execution_id")?,
            user_id: col(row, "user_id")?,
            priority: col_enum(row, "priority", Priority::parse)?,
            enqueued_at: col_ts(row, "enqueued_at")?,
            active_since: col_opt_ts(row, "active_since")?,
        })
    }
}

/// Sagas.
pub(crate) mod sagas {
    use integr8s_core::saga::{Saga, SagaState};
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_json, col_opt_ts, col_ts, Columns};

    pub(crate) const COLUMNS: &str =
        "saga_id, saga_name, execution_id, user_id, state, current_step, \
         completed_steps, compensated_steps, context, error_message, retry_count, created_at, \
         updated_at, completed_at";

    pub(crate) fn decode(row: &impl Columns) -> Result<Saga, StoreError> {
        Ok(Saga {
            saga_id: col(row, "saga_id")?,
            saga_name: col(row, "saga_name")?,
            execution_id: col(row, "execution_id")?,
            user_id: col(row, "user_id")?,
            state: col_enum(row, "state", SagaState::parse)?,
            current_step: col(row, "current_step")?,
            completed_steps: col_json(row, "completed_steps")?,
            compensated_steps: col_json(row, "compensated_steps")?,
            context: col_json(row, "context")?,
            error_message: col(row, "error_message")?,
            retry_count: col(row, "retry_count")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
            completed_at: col_opt_ts(row, "completed_at")?,
        })
    }
}

/// Dead-letter messages.
pub(crate) mod dlq {
    use integr8s_core::ports::dlq::{DlqMessage, DlqStatus};
    use integr8s_core::StoreError;
    use integr8s_core::{Envelope, StoredEvent};

    use crate::codec::{col, col_enum, col_opt_ts, col_ts, col_u32, Columns};

    pub(crate) const COLUMNS: &str =
        "message_id, group_name, event_seq, event_body, original_topic, error, \
         attempts, retry_count, status, producer_id, failed_at, created_at, updated_at, \
         next_retry_at, last_retried_at, redelivered_at, discarded_at, discard_reason";

    pub(crate) fn decode(row: &impl Columns) -> Result<DlqMessage, StoreError> {
        let seq: i64 = col(row, "event_seq")?;
        let body: String = col(row, "event_body")?;
        let envelope: Envelope = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("dlq event {seq}: {e}")))?;
        Ok(DlqMessage {
            message_id: col(row, "message_id")?,
            group: col(row, "group_name")?,
            event: StoredEvent { seq, envelope },
            original_topic: col(row, "original_topic")?,
            error: col(row, "error")?,
            attempts: col_u32(row, "attempts")?,
            retry_count: col_u32(row, "retry_count")?,
            status: col_enum(row, "status", DlqStatus::parse)?,
            producer_id: col(row, "producer_id")?,
            failed_at: col_ts(row, "failed_at")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
            next_retry_at: col_opt_ts(row, "next_retry_at")?,
            last_retried_at: col_opt_ts(row, "last_retried_at")?,
            redelivered_at: col_opt_ts(row, "redelivered_at")?,
            discarded_at: col_opt_ts(row, "discarded_at")?,
            discard_reason: col(row, "discard_reason")?,
        })
    }
}

/// Replay sessions.
pub(crate) mod replay {
    use integr8s_core::ports::replay::{ReplayCursor, ReplaySession, ReplayStatus};
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_json, col_opt_ts, col_ts, to_u64, Columns};

    pub(crate) const COLUMNS: &str = "session_id, replay_id, config, status, total_events, \
         replayed_events, failed_events, skipped_events, created_at, started_at, completed_at, \
         last_event_at, errors, created_by, cursor_ts, cursor_seq";

    pub(crate) fn decode(row: &impl Columns) -> Result<ReplaySession, StoreError> {
        let cursor = match (
            col_opt_ts(row, "cursor_ts")?,
            col::<Option<i64>>(row, "cursor_seq")?,
        ) {
            (Some(timestamp), Some(seq)) => Some(ReplayCursor { timestamp, seq }),
            _ => None,
        };
        Ok(ReplaySession {
            session_id: col(row, "session_id")?,
            replay_id: col(row, "replay_id")?,
            config: col_json(row, "config")?,
            status: col_enum(row, "status", ReplayStatus::parse)?,
            total_events: to_u64(col(row, "total_events")?, "total_events")?,
            replayed_events: to_u64(col(row, "replayed_events")?, "replayed_events")?,
            failed_events: to_u64(col(row, "failed_events")?, "failed_events")?,
            skipped_events: to_u64(col(row, "skipped_events")?, "skipped_events")?,
            created_at: col_ts(row, "created_at")?,
            started_at: col_opt_ts(row, "started_at")?,
            completed_at: col_opt_ts(row, "completed_at")?,
            last_event_at: col_opt_ts(row, "last_event_at")?,
            errors: col_json(row, "errors")?,
            created_by: col(row, "created_by")?,
            cursor,
        })
    }
}

/// Notifications.
pub(crate) mod notifications {
    use integr8s_core::notification::{
        Notification, NotificationChannel, NotificationSeverity, NotificationStatus,
    };
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_json, col_opt_ts, col_ts, Columns};

    pub(crate) const COLUMNS: &str =
        "notification_id, user_id, channel, severity, status, subject, body, \
         action_url, tags, dedup_key, created_at, read_at";

    pub(crate) fn decode(row: &impl Columns) -> Result<Notification, StoreError> {
        Ok(Notification {
            notification_id: col(row, "notification_id")?,
            user_id: col(row, "user_id")?,
            channel: col_enum(row, "channel", NotificationChannel::parse)?,
            severity: col_enum(row, "severity", NotificationSeverity::parse)?,
            status: col_enum(row, "status", NotificationStatus::parse)?,
            subject: col(row, "subject")?,
            body: col(row, "body")?,
            action_url: col(row, "action_url")?,
            tags: col_json(row, "tags")?,
            dedup_key: col(row, "dedup_key")?,
            created_at: col_ts(row, "created_at")?,
            read_at: col_opt_ts(row, "read_at")?,
        })
    }
}

/// Notification subscriptions and deliveries.
pub(crate) mod notification_deliveries {
    use integr8s_core::notification::{
        NotificationChannel, NotificationDelivery, NotificationSeverity, NotificationStatus,
        Subscription,
    };
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_json, col_opt_ts, col_ts, col_u32, Columns};

    pub(crate) const SUB_COLUMNS: &str =
        "user_id, channel, enabled, severities, include_tags, exclude_tags, \
         webhook_url, slack_webhook, webhook_secret, quiet_hours_enabled, quiet_hours_start, \
         quiet_hours_end, timezone, batch_interval_minutes, created_at, updated_at";

    pub(crate) const DELIVERY_COLUMNS: &str =
        "notification_id, channel, user_id, status, target_url, secret, \
         attempts, max_attempts, next_attempt_at, last_error, delivered_at, updated_at";

    pub(crate) fn decode_subscription(row: &impl Columns) -> Result<Subscription, StoreError> {
        let severities: Vec<String> = col_json(row, "severities")?;
        let severities = severities
            .iter()
            .map(|s| {
                NotificationSeverity::parse(s)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown severity {s:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Subscription {
            user_id: col(row, "user_id")?,
            channel: col_enum(row, "channel", NotificationChannel::parse)?,
            enabled: col(row, "enabled")?,
            severities,
            include_tags: col_json(row, "include_tags")?,
            exclude_tags: col_json(row, "exclude_tags")?,
            webhook_url: col(row, "webhook_url")?,
            slack_webhook: col(row, "slack_webhook")?,
            webhook_secret: col(row, "webhook_secret")?,
            quiet_hours_enabled: col(row, "quiet_hours_enabled")?,
            quiet_hours_start: col(row, "quiet_hours_start")?,
            quiet_hours_end: col(row, "quiet_hours_end")?,
            timezone: col(row, "timezone")?,
            batch_interval_minutes: col(row, "batch_interval_minutes")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }

    pub(crate) fn decode_delivery(row: &impl Columns) -> Result<NotificationDelivery, StoreError> {
        Ok(NotificationDelivery {
            notification_id: col(row, "notification_id")?,
            channel: col_enum(row, "channel", NotificationChannel::parse)?,
            user_id: col(row, "user_id")?,
            status: col_enum(row, "status", NotificationStatus::parse)?,
            target_url: col(row, "target_url")?,
            secret: col(row, "secret")?,
            attempts: col_u32(row, "attempts")?,
            max_attempts: col_u32(row, "max_attempts")?,
            next_attempt_at: col_ts(row, "next_attempt_at")?,
            last_error: col(row, "last_error")?,
            delivered_at: col_opt_ts(row, "delivered_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }
}

/// The settings audit log.
pub(crate) mod system_settings {
    use integr8s_core::system_settings::{SettingsAuditAction, SettingsAuditEntry};
    use integr8s_core::StoreError;

    use crate::codec::{col, col_enum, col_json, col_ts, Columns};

    pub(crate) fn decode_audit(row: &impl Columns) -> Result<SettingsAuditEntry, StoreError> {
        Ok(SettingsAuditEntry {
            audit_id: col(row, "audit_id")?,
            action: col_enum(row, "action", SettingsAuditAction::parse)?,
            user_id: col(row, "user_id")?,
            username: col(row, "username")?,
            timestamp: col_ts(row, "timestamp")?,
            old_values: col_json(row, "old_values")?,
            new_values: col_json(row, "new_values")?,
        })
    }
}

/// Saved scripts.
pub(crate) mod scripts {
    use integr8s_core::ports::SavedScript;
    use integr8s_core::StoreError;

    use crate::codec::{col, col_ts, Columns};

    pub(crate) const COLUMNS: &str =
        "script_id, user_id, name, script, lang, lang_version, description, created_at, updated_at";

    pub(crate) fn decode(row: &impl Columns) -> Result<SavedScript, StoreError> {
        Ok(SavedScript {
            script_id: col(row, "script_id")?,
            user_id: col(row, "user_id")?,
            name: col(row, "name")?,
            script: col(row, "script")?,
            lang: col(row, "lang")?,
            lang_version: col(row, "lang_version")?,
            description: col(row, "description")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }
}

/// Per-user rate-limit overrides.
pub(crate) mod ratelimit {
    use integr8s_core::ports::ratelimit::UserRateLimit;
    use integr8s_core::StoreError;

    use crate::codec::{col, col_json, col_ts, Columns};

    pub(crate) const COLUMNS: &str =
        "user_id, bypass_rate_limit, global_multiplier, rules, notes, created_at, updated_at";

    pub(crate) fn decode(row: &impl Columns) -> Result<UserRateLimit, StoreError> {
        Ok(UserRateLimit {
            user_id: col(row, "user_id")?,
            bypass_rate_limit: col(row, "bypass_rate_limit")?,
            global_multiplier: col(row, "global_multiplier")?,
            rules: col_json(row, "rules")?,
            notes: col(row, "notes")?,
            created_at: col_ts(row, "created_at")?,
            updated_at: col_ts(row, "updated_at")?,
        })
    }
}

/// Worker leases and the runs they own.
pub(crate) mod workers {
    use integr8s_core::ports::{OwnedRun, WorkerLease};
    use integr8s_core::StoreError;

    use crate::codec::{col, col_json, col_ts, Columns};

    pub(crate) const LEASE_COLUMNS: &str = "worker_id, report, started_at, renewed_at, expires_at";

    pub(crate) fn decode_lease(row: &impl Columns) -> Result<WorkerLease, StoreError> {
        Ok(WorkerLease {
            report: col_json(row, "report")?,
            started_at: col_ts(row, "started_at")?,
            renewed_at: col_ts(row, "renewed_at")?,
            expires_at: col_ts(row, "expires_at")?,
        })
    }

    pub(crate) const RUN_COLUMNS: &str = "execution_id, user_id, worker_id, run_started_at";

    pub(crate) fn decode_run(row: &impl Columns) -> Result<OwnedRun, StoreError> {
        Ok(OwnedRun {
            execution_id: col(row, "execution_id")?,
            user_id: col(row, "user_id")?,
            worker_id: col(row, "worker_id")?,
            started: col::<Option<String>>(row, "run_started_at")?.is_some(),
        })
    }
}
