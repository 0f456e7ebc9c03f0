//! Store conformance suite: the contract of every `ports::store` role trait, run against each
//! adapter with [`store_test_suite!`](crate::store_test_suite), one `#[tokio::test]` per case.
//!
//! Each case gets a fresh, migrated store from the adapter's factory expression.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::event::{EventMetadata, EventPayload, RunRequest};
use crate::execution::{ExecutionFilter, ExecutionResultRecord};
use crate::ports::{CreateExecution, NewUser, QueueEntry, QueuePolicy, SagaFilter, Store};
use crate::saga::{Saga, SagaState};
use crate::user::Role;
use crate::{
    Envelope, ErrorType, EventType, Execution, ExecutionStatus, Priority, ResourceUsage, RunLimits,
    StoreError,
};

/// An adapter under test and whatever must outlive it (a temporary directory, say).
pub struct Fixture<S: ?Sized> {
    pub store: Arc<S>,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

impl<S: ?Sized> Fixture<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            _guard: None,
        }
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn with_guard(store: Arc<S>, guard: impl Any + Send + Sync) -> Self {
        Self {
            store,
            _guard: Some(Box::new(guard)),
        }
    }
}

/// Generates one `#[tokio::test]` per store case. `$make` is an expression (re-evaluated per
/// test) giving a future of `Fixture<dyn Store>` over a fresh, migrated store. The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! store_test_suite {
    ($make:expr) => {
        $crate::store_test_suite!(@cases $make;
            user_create_conflict_and_lookup,
            user_upsert_resets_existing_user,
            execution_create_get_and_list,
            execution_idempotency_key_returns_existing,
            execution_transition_is_compare_and_set,
            execution_finish_only_once,
            execution_delete_removes_dependents,
            events_append_is_idempotent_and_ordered,
            events_append_batch_keeps_order_and_is_idempotent,
            events_for_aggregate_filters_by_type,
            offsets_never_go_backwards,
            queue_enqueue_is_idempotent_and_release_frees,
            queue_claim_respects_caps,
            queue_claims_by_priority,
            queue_ageing_lets_old_low_priority_win,
            queue_positions_follow_claim_order,
            queue_concurrent_claims_never_share_an_entry,
            queue_equal_priorities_take_turns_between_users,
            queue_backlog_does_not_age_while_its_user_is_served,
            queue_fewer_active_entries_go_first,
            retention_purges_old_events_and_executions_only,
            retention_purges_old_notifications_and_audit,
            retention_lease_has_one_holder,
            retention_purges_replay_sessions_in_batches,
            saga_get_or_create_is_atomic,
            saga_save_and_terminal_is_frozen,
            allocations_are_idempotent,
            dlq_dead_letter_list_and_reopen,
            dlq_schedule_retry_discard_and_redeliver,
            dlq_stats_and_purge,
            replay_session_lifecycle,
            replay_events_filter_and_order,
            notifications_create_is_idempotent_and_throttled,
            notifications_list_filters_and_pages,
            notifications_read_state_is_per_owner,
            notifications_delete_by_owner_only,
            notification_subscriptions_upsert_per_channel,
            notification_deliveries_claim_retry_and_settle,
            system_settings_save_reset_and_audit,
            effective_settings_follow_the_store,
            user_admin_search_filters_and_updates,
            user_admin_delete_cascades_owned_data,
            user_admin_delete_cascades_every_owned_table,
            event_queries_filter_page_and_archive,
            event_stats_cover_the_window,
            scripts_are_private_to_their_owner,
            scripts_update_and_delete_by_owner_only,
            settings_events_are_per_user_and_bounded,
            settings_snapshots_never_go_backwards,
            settings_fold_snapshots_and_restores,
            rate_limit_override_upsert_get_delete,
            workers_leases_renew_expire_and_prune,
            workers_claim_run_records_owner_and_fences_start,
            workers_lost_runs_are_settled_once,
            workers_outcome_and_lost_run_settlement_exclude_each_other,
            queue_stale_claims_are_handed_back_once,
            queue_schedule_is_fenced_by_the_claim,
            queue_schedule_and_hand_back_race_safely,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::testsuite::store::Fixture<dyn $crate::ports::Store> =
                    $make.await;
                $crate::testsuite::store::$case(fixture.store.clone()).await;
            }
        )+
    };
}

type S = Arc<dyn Store>;

fn new_user(name: &str) -> NewUser {
    NewUser {
        user_id: crate::new_id(),
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::User,
        is_superuser: false,
    }
}

/// A queued execution created `age` ago.
pub fn sample_execution(user_id: &str, lang: &str, age: Duration) -> Execution {
    let at = crate::now() - age;
    Execution {
        execution_id: crate::new_id(),
        user_id: user_id.to_owned(),
        script: "print('hi')".to_owned(),
        lang: lang.to_owned(),
        lang_version: "3.11".to_owned(),
        status: ExecutionStatus::Queued,
        priority: Priority::Normal,
        limits: RunLimits {
            cpu_time_ms: Some(1500),
            ..RunLimits::default()
        },
        stdout: None,
        stderr: None,
        exit_code: None,
        error_type: None,
        error_message: None,
        resource_usage: None,
        idempotency_key: None,
        stdin: Some("line 1\n".to_owned()),
        created_at: at,
        updated_at: at,
    }
}

/// The `execution_requested` event of `e`.
pub fn requested_event(e: &Execution) -> Envelope {
    let payload = EventPayload::ExecutionRequested(RunRequest {
        execution_id: e.execution_id.clone(),
        script: e.script.clone(),
        language: e.lang.clone(),
        language_version: e.lang_version.clone(),
        runtime_image: "local".to_owned(),
        runtime_command: vec!["python3".to_owned()],
        runtime_filename: "main.py".to_owned(),
        timeout_seconds: e.limits.timeout_seconds,
        cpu_limit: "1".to_owned(),
        memory_limit: "256Mi".to_owned(),
        cpu_request: "1".to_owned(),
        memory_request: "256Mi".to_owned(),
        priority: e.priority,
        limits: e.limits,
        stdin: e.stdin.clone(),
    });
    Envelope::new(
        payload,
        EventMetadata::new("testsuite", Some(e.user_id.clone())),
    )
}

/// A small event of type `execution_queued` or `result_stored` for `execution_id`.
pub fn small_event(kind: EventType, execution_id: &str) -> Envelope {
    let execution_id = execution_id.to_owned();
    let payload = match kind {
        EventType::ResultStored => EventPayload::ResultStored {
            execution_id,
            storage_type: None,
            storage_path: "db".to_owned(),
            size_bytes: 1,
        },
        _ => EventPayload::ExecutionQueued {
            execution_id,
            position_in_queue: None,
            estimated_start_time: None,
        },
    };
    Envelope::new(payload, EventMetadata::new("testsuite", None))
}

async fn create(store: &S, e: &Execution) -> Execution {
    match store
        .create_execution(e, &requested_event(e))
        .await
        .unwrap()
    {
        CreateExecution::Created(created, _) => created,
        CreateExecution::Existing(_) => panic!("expected a new execution"),
    }
}

fn entry(user: &str, priority: Priority, enqueued_at: DateTime<Utc>) -> QueueEntry {
    QueueEntry {
        execution_id: crate::new_id(),
        user_id: user.to_owned(),
        priority,
        enqueued_at,
        active_since: None,
    }
}

fn policy(max_active: u32, max_active_per_user: u32, ageing_seconds: u32) -> QueuePolicy {
    QueuePolicy {
        max_active,
        max_active_per_user,
        ageing_seconds,
    }
}

async fn claim_id(store: &S, p: &QueuePolicy, now: DateTime<Utc>) -> Option<String> {
    store
        .claim_next(p, now)
        .await
        .unwrap()
        .map(|e| e.execution_id)
}

mod admin;
mod cascade;
mod dlq;
mod events;
mod executions;
mod notifications;
mod queue;
mod ratelimit;
mod replay;
mod retention;
mod sagas;
mod scripts;
mod user_settings;
mod users;
mod workers;

pub use admin::*;
pub use cascade::*;
pub use dlq::*;
pub use events::*;
pub use executions::*;
pub use notifications::*;
pub use queue::*;
pub use ratelimit::*;
pub use replay::*;
pub use retention::*;
pub use sagas::*;
pub use scripts::*;
pub use user_settings::*;
pub use users::*;
pub use workers::*;
