//! The execution saga's steps and their compensations.

use integr8s_core::effective_settings::{MAX_SCRIPT_BYTES, MAX_TIMEOUT_SECONDS};
use integr8s_core::error::StoreError;
use integr8s_core::event::{Envelope, EventPayload, EventType, RunRequest};
use integr8s_core::execution::ExecutionStatus;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::SagaOrchestratorStore;
use integr8s_core::saga::Saga;
use serde_json::Value;

use crate::consumer::emit_caused_by;

pub(super) const VALIDATE: &str = "validate_execution";
pub(super) const ALLOCATE: &str = "allocate_resources";
pub(super) const CREATE_POD: &str = "create_pod";

/// The steps in order.
pub(super) const STEPS: [&str; 3] = [VALIDATE, ALLOCATE, CREATE_POD];

/// Why a step did not complete.
#[derive(Debug)]
pub(super) enum StepError {
    /// The step refuses the execution: compensate, fail the saga and the execution.
    Failed(String),
    /// The execution ended meanwhile (e.g. cancelled): compensate and stop quietly.
    Aborted(String),
    /// The store failed; the step is retried on redelivery.
    Store(StoreError),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

/// What a step needs besides the saga.
pub(super) struct StepEnv<'a> {
    pub store: &'a dyn SagaOrchestratorStore,
    pub outbox: &'a Outbox,
    /// The `execution_accepted` event that drives the saga.
    pub cause: &'a Envelope,
}

pub(super) async fn run(name: &str, saga: &mut Saga, env: &StepEnv<'_>) -> Result<(), StepError> {
    match name {
        VALIDATE => validate(saga, env).await,
        ALLOCATE => allocate(saga, env).await,
        other => Err(StepError::Failed(format!("unknown saga step '{other}'"))),
    }
}

/// The command a step sends beyond the store (to the worker), if it is such a step. Its
/// command is stored in the same transaction that records the step done, fenced by the saga
/// still being live, so the command goes out at most once per saga and never for an ended one.
pub(super) async fn command(
    name: &str,
    saga: &mut Saga,
    env: &StepEnv<'_>,
) -> Option<Result<Envelope, StepError>> {
    match name {
        CREATE_POD => Some(create_pod(saga, env).await),
        _ => None,
    }
}

pub(super) use integr8s_core::saga::compensation_of;

/// Undoes a completed step (idempotent: running it twice is harmless).
pub(super) async fn compensate(
    step: &str,
    saga: &Saga,
    env: &StepEnv<'_>,
) -> Result<(), StoreError> {
    match step {
        ALLOCATE => {
            env.store.release_allocation(&saga.execution_id).await?;
        }
        CREATE_POD => {
            let payload = EventPayload::DeletePodCommand {
                saga_id: saga.saga_id.clone(),
                execution_id: saga.execution_id.clone(),
                reason: "Saga compensation due to failure".to_owned(),
                pod_name: None,
                namespace: None,
            };
            emit_caused_by(env.outbox, env.cause, payload).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn validate(saga: &mut Saga, env: &StepEnv<'_>) -> Result<(), StepError> {
    let Some(execution) = env.store.execution(&saga.execution_id).await? else {
        return Err(StepError::Aborted("the execution was deleted".to_owned()));
    };
    match execution.status {
        ExecutionStatus::Scheduled | ExecutionStatus::Running => {}
        s if s.is_terminal() => {
            return Err(StepError::Aborted(format!(
                "the execution already ended ({})",
                s.as_str()
            )))
        }
        s => {
            return Err(StepError::Failed(format!(
                "the execution is {}, expected scheduled",
                s.as_str()
            )))
        }
    }
    if execution.script.len() > MAX_SCRIPT_BYTES {
        return Err(StepError::Failed(format!(
            "the script is {} bytes; at most {MAX_SCRIPT_BYTES} bytes are accepted",
            execution.script.len()
        )));
    }
    let timeout = execution.limits.timeout_seconds;
    if timeout == 0 || timeout > MAX_TIMEOUT_SECONDS {
        return Err(StepError::Failed(format!(
            "the timeout of {timeout} s is outside 1..={MAX_TIMEOUT_SECONDS} s"
        )));
    }
    set(
        &mut saga.context,
        "execution_id",
        execution.execution_id.into(),
    );
    set(&mut saga.context, "language", execution.lang.into());
    set(
        &mut saga.context,
        "language_version",
        execution.lang_version.into(),
    );
    set(&mut saga.context, "timeout_seconds", timeout.into());
    set(&mut saga.context, "user_id", execution.user_id.into());
    Ok(())
}

async fn allocate(saga: &mut Saga, env: &StepEnv<'_>) -> Result<(), StepError> {
    let lang = saga
        .context
        .get("language")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let lang = match lang {
        Some(l) => l,
        None => match env.store.execution(&saga.execution_id).await? {
            Some(e) => e.lang,
            None => return Err(StepError::Aborted("the execution was deleted".to_owned())),
        },
    };
    let allocation_id = env.store.allocate(&saga.execution_id, &lang).await?;
    set(&mut saga.context, "allocation_id", allocation_id.into());
    set(&mut saga.context, "resources_allocated", true.into());
    Ok(())
}

async fn create_pod(saga: &mut Saga, env: &StepEnv<'_>) -> Result<Envelope, StepError> {
    let run = run_request(env.store, &saga.execution_id).await?;
    let payload = EventPayload::CreatePodCommand {
        saga_id: saga.saga_id.clone(),
        run,
    };
    set(&mut saga.context, "pod_creation_triggered", true.into());
    Ok(env.outbox.caused_by(env.cause, payload))
}

/// The run request as the API submitted it, from the execution's `execution_requested` event.
async fn run_request(
    store: &dyn SagaOrchestratorStore,
    execution_id: &str,
) -> Result<RunRequest, StepError> {
    let events = store
        .events_for_aggregate(execution_id, &[EventType::ExecutionRequested], 1)
        .await?;
    events
        .into_iter()
        .find_map(|e| match e.envelope.payload {
            EventPayload::ExecutionRequested(run) => Some(run),
            _ => None,
        })
        .ok_or_else(|| StepError::Failed("the execution_requested event is missing".to_owned()))
}

fn set(context: &mut Value, key: &str, value: Value) {
    if !context.is_object() {
        *context = Value::Object(Default::default());
    }
    if let Some(map) = context.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}
