//! Retention through the real server: rows older than their kind's retention are deleted by the
//! background sweep, newer ones stay. Old rows are written into the server's database with old
//! timestamps (as months of use would leave them) while it runs; the sweep runs every second.

use std::time::Instant;

use chrono::{Duration, Utc};
use integr8s_core::event::{EventMetadata, EventPayload, RunRequest};
use integr8s_core::notification::{
    Notification, NotificationChannel, NotificationSeverity, NotificationStatus,
};
use integr8s_core::ports::{EventStore, ExecutionStore, NotificationStore, SystemSettingsStore};
use integr8s_core::system_settings::{SettingsAuditAction, SettingsAuditEntry, SystemSettings};
use integr8s_core::{Envelope, Execution, ExecutionStatus, Priority, RunLimits};

use crate::harness::{Server, DEADLINE};

fn execution(user_id: &str, age: Duration) -> (Execution, Envelope) {
    let at = Utc::now() - age;
    let e = Execution {
        execution_id: integr8s_core::new_id(),
        user_id: user_id.to_owned(),
        script: "print('kept?')".to_owned(),
        lang: "python".to_owned(),
        lang_version: "3.11".to_owned(),
        status: ExecutionStatus::Completed,
        priority: Priority::Normal,
        limits: RunLimits::default(),
        stdout: Some("kept?\n".to_owned()),
        stderr: Some(String::new()),
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        resource_usage: None,
        idempotency_key: None,
        stdin: None,
        created_at: at,
        updated_at: at,
    };
    let mut requested = Envelope::new(
        EventPayload::ExecutionRequested(RunRequest {
            execution_id: e.execution_id.clone(),
            script: e.script.clone(),
            language: "python".to_owned(),
            language_version: "3.11".to_owned(),
            runtime_image: "local".to_owned(),
            runtime_command: vec!["python3".to_owned()],
            runtime_filename: "main.py".to_owned(),
            timeout_seconds: 10,
            cpu_limit: "1000m".to_owned(),
            memory_limit: "256Mi".to_owned(),
            cpu_request: "1000m".to_owned(),
            memory_request: "256Mi".to_owned(),
            priority: Priority::Normal,
            limits: RunLimits::default(),
            stdin: None,
        }),
        EventMetadata::new("retention-test", Some(user_id.to_owned())),
    );
    requested.timestamp = at;
    (e, requested)
}

fn notification(user_id: &str, age: Duration) -> (Notification, Envelope) {
    let n = Notification {
        notification_id: integr8s_core::new_id(),
        user_id: user_id.to_owned(),
        channel: NotificationChannel::InApp,
        severity: NotificationSeverity::Low,
        status: NotificationStatus::Delivered,
        subject: "retention".to_owned(),
        body: "b".to_owned(),
        action_url: None,
        tags: Vec::new(),
        dedup_key: None,
        created_at: Utc::now() - age,
        read_at: None,
    };
    let mut created = Envelope::new(
        EventPayload::NotificationCreated {
            notification_id: n.notification_id.clone(),
            user_id: user_id.to_owned(),
            subject: n.subject.clone(),
            body: n.body.clone(),
            severity: n.severity,
            tags: Vec::new(),
            channels: vec![NotificationChannel::InApp],
        },
        EventMetadata::new("retention-test", Some(user_id.to_owned())),
    );
    created.timestamp = n.created_at;
    (n, created)
}

fn audit(age: Duration) -> SettingsAuditEntry {
    SettingsAuditEntry {
        audit_id: integr8s_core::new_id(),
        action: SettingsAuditAction::SystemSettingsReset,
        user_id: "admin".to_owned(),
        username: "admin".to_owned(),
        timestamp: Utc::now() - age,
        old_values: SystemSettings::default(),
        new_values: SystemSettings::default(),
    }
}

fn auth_failed(age: Duration) -> Envelope {
    let mut e = Envelope::new(
        EventPayload::AuthFailed {
            username: Some("nobody".to_owned()),
            reason: "invalid credentials".to_owned(),
            ip_address: Some("192.0.2.1".to_owned()),
        },
        EventMetadata::new("retention-test", None),
    );
    e.timestamp = Utc::now() - age;
    e
}

/// Old and new rows of each kind, with the default retentions (30 days for executions, events
/// and notifications, 90 days for audit records).
#[tokio::test]
async fn the_sweep_deletes_what_is_past_retention_and_keeps_the_rest() {
    let s = Server::start(&[("INTEGR8S_RETENTION__SWEEP_INTERVAL", "1s")]).await;
    let user = s.user().await;
    let admin = s.admin().await;
    let me = user.get("/api/v1/auth/me").await.body["user_id"]
        .as_str()
        .expect("user id")
        .to_owned();

    let store =
        integr8s_store::SqliteStore::open(&s.data_dir.join("integr8s.db").to_string_lossy())
            .await
            .expect("open the server's database");
    let old = Duration::days(40);
    let recent = Duration::days(20);
    let mut kept = Vec::new();
    let mut gone = Vec::new();
    for (age, list) in [(old, &mut gone), (recent, &mut kept)] {
        let (e, requested) = execution(&me, age);
        store
            .create_execution(&e, &requested)
            .await
            .expect("execution");
        let (n, created) = notification(&me, age);
        store
            .create_notification(&n, &[], &created, None)
            .await
            .expect("notification");
        list.push(("execution", e.execution_id.clone()));
        list.push(("event", requested.event_id.clone()));
        list.push(("notification", n.notification_id.clone()));
    }
    // Audit records live 90 days: 100 days is past it, 40 days is not.
    let old_audit = audit(Duration::days(100));
    let kept_audit = audit(old);
    store
        .reset_system_settings(&old_audit)
        .await
        .expect("audit");
    store
        .reset_system_settings(&kept_audit)
        .await
        .expect("audit");
    let old_login = auth_failed(Duration::days(100));
    let kept_login = auth_failed(old);
    store.append_event(&old_login).await.expect("event");
    store.append_event(&kept_login).await.expect("event");
    gone.push(("audit", old_audit.audit_id.clone()));
    gone.push(("event", old_login.event_id.clone()));
    kept.push(("audit", kept_audit.audit_id.clone()));
    kept.push(("event", kept_login.event_id.clone()));
    store.close().await;

    let present = |kind: &'static str, id: String| {
        let (user, admin) = (&user, &admin);
        async move {
            match kind {
                "execution" => {
                    let r = user.get(&format!("/api/v1/executions/{id}/result")).await;
                    assert!(matches!(r.status, 200 | 404), "{}", r.body);
                    r.status == 200
                }
                "event" => {
                    let r = admin.get(&format!("/api/v1/admin/events/{id}")).await;
                    assert!(matches!(r.status, 200 | 404), "{}", r.body);
                    r.status == 200
                }
                "notification" => {
                    let r = user.get("/api/v1/notifications?limit=100").await;
                    r.body.to_string().contains(&id)
                }
                _ => {
                    let r = admin.get("/api/v1/admin/settings/audit?limit=500").await;
                    r.body.to_string().contains(&id)
                }
            }
        }
    };
    let start = Instant::now();
    loop {
        let mut left = Vec::new();
        for (kind, id) in &gone {
            if present(kind, id.clone()).await {
                left.push(*kind);
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "still there: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for (kind, id) in kept {
        assert!(
            present(kind, id.clone()).await,
            "{kind} {id} within retention was deleted"
        );
    }
}
