//! Creating an execution's ConfigMap and Pod, and what a failed create becomes.

use integr8s_core::event::{Envelope, EventPayload, EventType, RunOutput, RunRequest};
use integr8s_core::execution::{ErrorType, ExecutionStatus, NO_EXIT_CODE};
use integr8s_engine::consumer::{emit_caused_by, Attempt};
use integr8s_engine::EngineError;
use kube::api::{DeleteParams, PostParams};

use super::{Inner, OUTCOMES};
use crate::error::{is_already_exists, is_not_found, CreateFailure};
use crate::manifest::pod::PodRequest;
use crate::manifest::{
    build_config_map, build_pod, config_map_name, pod_name, valid_execution_id, Origin,
};
use crate::quantity::{parse_bytes, parse_cpu_millis};

impl Inner {
    pub(super) async fn create(
        &self,
        cause: &Envelope,
        saga_id: &str,
        run: &RunRequest,
        attempt: Attempt,
    ) -> Result<(), EngineError> {
        let id = run.execution_id.as_str();
        if !valid_execution_id(id) {
            let message = format!("execution id '{id}' cannot name a Kubernetes pod");
            return self.fail(cause, id, ErrorType::SystemError, message).await;
        }
        let Some(execution) = self.store.execution(id).await? else {
            tracing::info!(execution_id = id, "execution deleted; no pod created");
            return Ok(());
        };
        if execution.status.is_terminal() {
            tracing::info!(
                execution_id = id,
                status = execution.status.as_str(),
                "execution ended; no pod created"
            );
            return Ok(());
        }
        // A pod deleted by a cancel (or by compensation) is never created again by a
        // redelivered command.
        if self.has_event(id, &[EventType::DeletePodCommand]).await?
            || self.has_event(id, OUTCOMES).await?
        {
            tracing::info!(
                execution_id = id,
                "cancelled or ended before its pod was created; skipped"
            );
            return Ok(());
        }
        let runtime = match self.images.resolve(&run.language, &run.language_version) {
            Ok(runtime) => runtime,
            Err(e) => {
                return self
                    .fail(cause, id, ErrorType::SystemError, e.to_string())
                    .await
            }
        };
        let namespace = self.config.namespace.as_str();
        let origin = Origin {
            user_id: cause.metadata.user_id.clone(),
            correlation_id: cause.metadata.correlation_id.clone(),
            saga_id: saga_id.to_owned(),
        };
        let request = PodRequest {
            execution_id: id,
            runtime: &runtime,
            limits: &run.limits,
            cpu_request: quantity_or(&run.cpu_request, &self.config.cpu_request),
            cpu_limit: quantity_or(&run.cpu_limit, &self.config.cpu_limit),
            memory_request_bytes: parse_bytes(&run.memory_request)
                .unwrap_or(run.limits.memory_bytes),
            has_stdin: run.stdin.is_some(),
            origin: &origin,
        };
        let pod = build_pod(&self.config, &request);
        let config_map = build_config_map(
            namespace,
            id,
            &runtime.lang,
            &runtime.file_name,
            &run.script,
            run.stdin.as_deref(),
        );

        let params = PostParams::default();
        if let Err(e) = self.config_maps.create(&params, &config_map).await {
            if !is_already_exists(&e) {
                return self.create_failed(cause, id, &e, attempt).await;
            }
        }
        let created = match self.pods.create(&params, &pod).await {
            Ok(_) => true,
            Err(e) if is_already_exists(&e) => false,
            Err(e) => return self.create_failed(cause, id, &e, attempt).await,
        };
        tracing::info!(execution_id = id, created, "executor pod in place");

        let moved = self
            .store
            .transition_execution(id, &[ExecutionStatus::Scheduled], ExecutionStatus::Running)
            .await?;
        if !moved {
            match self.store.execution(id).await? {
                Some(e) if e.status == ExecutionStatus::Running => {}
                _ => {
                    // Cancelled (or deleted) while the pod was being created: undo.
                    tracing::info!(
                        execution_id = id,
                        "execution ended during pod creation; pod deleted"
                    );
                    self.remove_created(id).await;
                    return Ok(());
                }
            }
        }
        if !self.has_event(id, &[EventType::PodCreated]).await? {
            let payload = crate::events::created(id, &pod_name(id), namespace);
            emit_caused_by(&self.outbox, cause, payload).await?;
        }
        Ok(())
    }

    /// A create call failed: a refusal or an exhausted quota ends the execution now; an
    /// unavailable API is retried by redelivery, and ends it on the last attempt. Whatever was
    /// created is deleted first.
    async fn create_failed(
        &self,
        cause: &Envelope,
        id: &str,
        error: &kube::Error,
        attempt: Attempt,
    ) -> Result<(), EngineError> {
        let failure = CreateFailure::classify(error);
        tracing::warn!(
            execution_id = id,
            ?failure,
            "creating the executor pod failed"
        );
        let (error_type, message) = match failure {
            CreateFailure::QuotaExceeded(message) => (
                ErrorType::ResourceLimit,
                format!("the namespace's resource quota has no room for the run: {message}"),
            ),
            CreateFailure::Refused(message) => (
                ErrorType::SystemError,
                format!("kubernetes refused the executor pod: {message}"),
            ),
            CreateFailure::Unavailable(message) if attempt.last => (
                ErrorType::SystemError,
                format!("the kubernetes API is unavailable: {message}"),
            ),
            CreateFailure::Unavailable(message) => {
                return Err(EngineError::Dependency {
                    service: "kubernetes API",
                    detail: message,
                })
            }
        };
        self.remove_created(id).await;
        self.fail(cause, id, error_type, message).await
    }

    /// Compensation: deletes the execution's pod and ConfigMap, whichever exist.
    async fn remove_created(&self, id: &str) {
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        if let Err(e) = self.pods.delete(&pod_name(id), &now).await {
            if !is_not_found(&e) {
                tracing::warn!(execution_id = id, error = %e, "could not delete the pod; the sweep will");
            }
        }
        if let Err(e) = self
            .config_maps
            .delete(&config_map_name(id), &DeleteParams::default())
            .await
        {
            if !is_not_found(&e) {
                tracing::warn!(execution_id = id, error = %e, "could not delete the ConfigMap; the sweep will");
            }
        }
    }

    /// Ends the execution with `execution_failed`, unless an outcome is stored already.
    async fn fail(
        &self,
        cause: &Envelope,
        id: &str,
        error_type: ErrorType,
        message: String,
    ) -> Result<(), EngineError> {
        if self.has_event(id, OUTCOMES).await? {
            return Ok(());
        }
        let payload = EventPayload::ExecutionFailed {
            execution_id: id.to_owned(),
            exit_code: NO_EXIT_CODE,
            error_type,
            error_message: Some(message),
            output: RunOutput::default(),
        };
        emit_caused_by(&self.outbox, cause, payload).await?;
        Ok(())
    }
}

/// The run request's CPU quantity when it is one, else the configured one.
fn quantity_or(requested: &str, configured: &str) -> String {
    if parse_cpu_millis(requested).is_some() {
        requested.to_owned()
    } else {
        configured.to_owned()
    }
}
