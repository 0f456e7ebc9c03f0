//! The HTTP side of the fake API server: the core/v1 paths of pods (with `log`) and
//! ConfigMaps, list and `watch=true` streams, JSON bodies as k8s-openapi serialises them, and
//! `Status` objects for errors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::objects::{Change, Kind, Selector};
use super::status::{deleted, ApiError};
use super::validate::{validate_config_map, validate_pod};
use super::{Cluster, KubeletCommand};

type Params = Query<HashMap<String, String>>;

pub(super) fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_pods).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod).delete(delete_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route(
            "/api/v1/namespaces/{ns}/configmaps",
            get(list_config_maps).post(create_config_map),
        )
        .route(
            "/api/v1/namespaces/{ns}/configmaps/{name}",
            get(get_config_map).delete(delete_config_map),
        )
        .fallback(|| async {
            ApiError {
                code: 404,
                reason: "NotFound",
                message: "the server could not find the requested resource".to_owned(),
                details: None,
            }
        })
        .with_state(cluster)
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn create_pod(
    State(cluster): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Like a real API server, a create goes on when its client goes away.
    tokio::spawn(create_pod_call(cluster, ns, body))
        .await
        .unwrap_or_else(|e| Err(ApiError::bad_request(format!("create failed: {e}"))))
}

async fn create_pod_call(
    cluster: Arc<Cluster>,
    ns: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    cluster.call("create", "pods").await?;
    let mut pod: Pod = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("decoding the pod: {e}")))?;
    let name = pod.name_any();
    if pod.namespace().is_some_and(|n| n != ns) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .to_owned(),
        ));
    }
    validate_pod(&pod)?;
    cluster.quota_check(&name)?;
    let created = {
        let mut objects = cluster.lock();
        if objects.pods.contains_key(&(ns.clone(), name.clone())) {
            return Err(ApiError::already_exists("pods", &name));
        }
        pod.metadata.namespace = Some(ns.clone());
        pod.metadata.uid = Some(integr8s_core::new_id());
        pod.metadata.creation_timestamp = Some(now());
        pod.status = Some(PodStatus {
            phase: Some("Pending".to_owned()),
            qos_class: Some("Burstable".to_owned()),
            ..PodStatus::default()
        });
        objects.put_pod(pod, "ADDED")
    };
    cluster.count_pod_created(&name);
    let _ = cluster.kubelet.send(KubeletCommand::Start(ns, name));
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn create_config_map(
    State(cluster): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    cluster.call("create", "configmaps").await?;
    let mut cm: ConfigMap = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("decoding the configmap: {e}")))?;
    let name = cm.name_any();
    validate_config_map(&cm)?;
    let mut objects = cluster.lock();
    if objects
        .config_maps
        .contains_key(&(ns.clone(), name.clone()))
    {
        return Err(ApiError::already_exists("configmaps", &name));
    }
    cm.metadata.namespace = Some(ns);
    cm.metadata.uid = Some(integr8s_core::new_id());
    cm.metadata.creation_timestamp = Some(now());
    let created = objects.put_config_map(cm, "ADDED");
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn get_pod(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Pod>, ApiError> {
    cluster.call("get", "pods").await?;
    cluster
        .lock()
        .pods
        .get(&(ns, name.clone()))
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("pods", &name))
}

async fn get_config_map(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ConfigMap>, ApiError> {
    cluster.call("get", "configmaps").await?;
    cluster
        .lock()
        .config_maps
        .get(&(ns, name.clone()))
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("configmaps", &name))
}

async fn delete_pod(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Pod>, ApiError> {
    cluster.call("delete", "pods").await?;
    let key = (ns, name.clone());
    let gone = {
        let mut objects = cluster.lock();
        let Some(mut pod) = objects.pods.get(&key).cloned() else {
            return Err(ApiError::not_found("pods", &name));
        };
        pod.metadata.deletion_timestamp = Some(now());
        pod.metadata.deletion_grace_period_seconds = Some(0);
        objects.put_pod(pod, "DELETED")
    };
    // The kubelet stops the pod's containers.
    if let Some(run) = cluster.runs_lock().remove(&key) {
        run.cancel();
    }
    Ok(Json(gone))
}

async fn delete_config_map(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    cluster.call("delete", "configmaps").await?;
    let mut objects = cluster.lock();
    let Some(cm) = objects.config_maps.get(&(ns, name.clone())).cloned() else {
        return Err(ApiError::not_found("configmaps", &name));
    };
    let uid = cm.metadata.uid.clone().unwrap_or_default();
    objects.put_config_map(cm, "DELETED");
    Ok(Json(deleted("configmaps", &name, &uid)))
}

async fn pod_log(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    cluster.call("log", "pods").await?;
    let objects = cluster.lock();
    let key = (ns, name.clone());
    let Some(pod) = objects.pods.get(&key) else {
        return Err(ApiError::not_found("pods", &name));
    };
    let container = params.get("container").cloned().unwrap_or_default();
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| container.is_empty() || c.name == container)
        })
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
    if !started {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    let mut log = objects.logs.get(&key).cloned().unwrap_or_default();
    if let Some(limit) = params
        .get("limitBytes")
        .and_then(|l| l.parse::<usize>().ok())
    {
        log.truncate(limit);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain")], log).into_response())
}

async fn list_pods(
    State(cluster): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    list_or_watch(cluster, Kind::Pod, ns, params).await
}

async fn list_config_maps(
    State(cluster): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    list_or_watch(cluster, Kind::ConfigMap, ns, params).await
}

async fn list_or_watch(
    cluster: Arc<Cluster>,
    kind: Kind,
    ns: String,
    params: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let selector = Selector::parse(params.get("labelSelector").map(String::as_str))
        .map_err(ApiError::bad_request)?;
    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
        cluster.call("watch", kind.resource()).await?;
        return watch(cluster, kind, ns, selector, &params);
    }
    cluster.call("list", kind.resource()).await?;
    let objects = cluster.lock();
    let items: Vec<Value> = match kind {
        Kind::Pod => objects
            .pods
            .iter()
            .filter(|((n, _), p)| *n == ns && selector.matches(p.labels()))
            .map(|(_, p)| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect(),
        Kind::ConfigMap => objects
            .config_maps
            .iter()
            .filter(|((n, _), c)| *n == ns && selector.matches(c.labels()))
            .map(|(_, c)| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect(),
    };
    let list_kind = match kind {
        Kind::Pod => "PodList",
        Kind::ConfigMap => "ConfigMapList",
    };
    Ok(Json(json!({
        "kind": list_kind,
        "apiVersion": "v1",
        "metadata": { "resourceVersion": objects.rv.to_string() },
        "items": items,
    }))
    .into_response())
}

/// A watch stream: the changes after `resourceVersion` (all current objects as `ADDED` when it
/// is absent or `0`), then live changes, until `timeoutSeconds` or until the server expires
/// its watches. A version older than the history gets one `ERROR` event with a 410 `Status`.
fn watch(
    cluster: Arc<Cluster>,
    kind: Kind,
    ns: String,
    selector: Selector,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let from = params.get("resourceVersion").cloned().unwrap_or_default();
    let (backlog, mut live, mut expired) = {
        let objects = cluster.lock();
        let expired = cluster.watch_epoch.subscribe();
        if from.is_empty() || from == "0" {
            let current: Vec<Change> = match kind {
                Kind::Pod => objects
                    .pods
                    .values()
                    .map(|p| synthetic(kind, p.namespace(), p.labels().clone(), p))
                    .collect(),
                Kind::ConfigMap => objects
                    .config_maps
                    .values()
                    .map(|c| synthetic(kind, c.namespace(), c.labels().clone(), c))
                    .collect(),
            };
            (current, objects.subscribe(), expired)
        } else {
            let rv: u64 = from
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {from}")))?;
            match objects.watch_from(rv) {
                Some((backlog, live)) => (backlog, live, expired),
                None => {
                    let error = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        objects.floor
                    ));
                    let line = json!({ "type": "ERROR", "object": error.body() });
                    return Ok(stream_response(Body::from(format!("{line}\n"))));
                }
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let matches =
            |c: &Change| c.kind == kind && c.namespace == ns && selector.matches(&c.labels);
        let mut last = 0;
        for change in backlog.iter().filter(|c| matches(c)) {
            last = last.max(change.rv);
            if !send(&cluster, &tx, change).await {
                return;
            }
        }
        loop {
            let change = tokio::select! {
                () = &mut deadline => return,
                _ = expired.changed() => return,
                change = live.recv() => match change {
                    Ok(change) => change,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            if change.rv > last && matches(&change) {
                last = change.rv;
                if !send(&cluster, &tx, &change).await {
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    Ok(stream_response(body))
}

fn synthetic<T: serde::Serialize>(
    kind: Kind,
    namespace: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    object: &T,
) -> Change {
    let object = serde_json::to_value(object).unwrap_or(Value::Null);
    let rv = object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    Change {
        rv,
        kind,
        event_type: "ADDED",
        namespace: namespace.unwrap_or_default(),
        labels,
        object,
    }
}

async fn send(
    cluster: &Cluster,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::convert::Infallible>>,
    change: &Change,
) -> bool {
    cluster.count(&format!("watch-event {}", change.kind.resource()));
    let line = json!({ "type": change.event_type, "object": change.object });
    tx.send(Ok(Bytes::from(format!("{line}\n")))).await.is_ok()
}

fn stream_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
