//! What the user is told about a finished execution (subject, body, severity, tags).

use integr8s_core::notification::NotificationSeverity;
use integr8s_core::{ErrorType, Execution, ExecutionStatus};

/// The text and classification of one execution notification.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Content {
    pub severity: NotificationSeverity,
    pub subject: String,
    pub body: String,
    pub tags: Vec<String>,
    pub action_url: String,
    /// One notification per execution and kind.
    pub dedup_key: String,
}

/// The notification for a finished execution, or `None` for outcomes nobody is notified of
/// (cancelled, or not finished). A run that exited non-zero is reported as failed, as the
/// original reported it.
pub(crate) fn for_execution(e: &Execution) -> Option<Content> {
    let id = &e.execution_id;
    let exit_code = e.exit_code.unwrap_or(-1);
    let (kind, severity, subject, body) = match e.status {
        ExecutionStatus::Completed if e.error_type.is_none() && exit_code == 0 => {
            let wall = e
                .resource_usage
                .map(|u| u.execution_time_wall_seconds)
                .unwrap_or(0.0);
            (
                "completed",
                NotificationSeverity::Medium,
                format!("Execution Completed: {id}"),
                format!("Your execution completed successfully. Duration: {wall:.2}s."),
            )
        }
        ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Error => {
            let error_type = e.error_type.unwrap_or(match e.status {
                ExecutionStatus::Completed => ErrorType::ScriptError,
                _ => ErrorType::SystemError,
            });
            (
                "failed",
                NotificationSeverity::High,
                format!("Execution Failed: {id}"),
                format!(
                    "Your execution failed: {} (exit code {exit_code}).",
                    error_type.as_str()
                ),
            )
        }
        ExecutionStatus::Timeout => (
            "timeout",
            NotificationSeverity::High,
            format!("Execution Timeout: {id}"),
            format!(
                "Your execution timed out after {}s.",
                e.limits.timeout_seconds
            ),
        ),
        ExecutionStatus::Cancelled
        | ExecutionStatus::Queued
        | ExecutionStatus::Scheduled
        | ExecutionStatus::Running => return None,
    };
    Some(Content {
        severity,
        subject,
        body,
        tags: vec![
            "execution".to_owned(),
            kind.to_owned(),
            "entity:execution".to_owned(),
            format!("exec:{id}"),
        ],
        action_url: format!("/api/v1/executions/{id}/result"),
        dedup_key: format!("exec:{id}:{kind}"),
    })
}

#[cfg(test)]
mod tests {
    use integr8s_core::{Priority, ResourceUsage, RunLimits};

    use super::*;

    fn execution(status: ExecutionStatus, exit_code: Option<i64>) -> Execution {
        let now = integr8s_core::now();
        Execution {
            execution_id: "e1".into(),
            user_id: "u1".into(),
            script: String::new(),
            lang: "python".into(),
            lang_version: "3.11".into(),
            status,
            priority: Priority::Normal,
            limits: RunLimits::default(),
            stdout: None,
            stderr: None,
            exit_code,
            error_type: None,
            error_message: None,
            resource_usage: Some(ResourceUsage {
                execution_time_wall_seconds: 1.234,
                ..Default::default()
            }),
            idempotency_key: None,
            stdin: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn completed_failed_and_timeout_texts() {
        let c = for_execution(&execution(ExecutionStatus::Completed, Some(0))).unwrap();
        assert_eq!(c.subject, "Execution Completed: e1");
        assert_eq!(
            c.body,
            "Your execution completed successfully. Duration: 1.23s."
        );
        assert_eq!(c.severity, NotificationSeverity::Medium);
        assert_eq!(
            c.tags,
            ["execution", "completed", "entity:execution", "exec:e1"]
        );
        assert_eq!(c.action_url, "/api/v1/executions/e1/result");

        let mut e = execution(ExecutionStatus::Completed, Some(3));
        e.error_type = Some(ErrorType::ScriptError);
        let c = for_execution(&e).unwrap();
        assert_eq!(c.subject, "Execution Failed: e1");
        assert_eq!(c.body, "Your execution failed: script_error (exit code 3).");
        assert_eq!(c.severity, NotificationSeverity::High);
        assert_eq!(c.tags[1], "failed");

        let c = for_execution(&execution(ExecutionStatus::Timeout, None)).unwrap();
        assert_eq!(c.subject, "Execution Timeout: e1");
        assert_eq!(c.body, "Your execution timed out after 10s.");
        assert_eq!(c.dedup_key, "exec:e1:timeout");

        assert!(for_execution(&execution(ExecutionStatus::Cancelled, None)).is_none());
        assert!(for_execution(&execution(ExecutionStatus::Running, None)).is_none());
    }
}
