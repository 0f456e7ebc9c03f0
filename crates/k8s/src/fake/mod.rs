//! A fake Kubernetes API server for tests: real HTTP over loopback, the core/v1 wire protocol
//! for pods and ConfigMaps (create, get, list, delete, `watch=true` with resource versions and
//! `410 Gone`, pod logs), and a simulated kubelet that schedules each pod and runs its command
//! through an [`Executor`] (the local sandbox in tests) with the pod's limits, so a pod
//! produces real output. The real `kube::Client` talks to it ([`FakeCluster::client`]).
//!
//! Faults can be injected: image pull errors, OOM kills, deadlines, evictions (for the next
//! pods), API errors and quota refusals (for the next calls), held creates, and the expiry of
//! every watch (`410 Gone` on resume). Every API call is counted ([`FakeCluster::calls`]).

mod kubelet;
mod objects;
mod routes;
mod status;
mod validate;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use integr8s_core::ports::Executor;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use objects::{Key, Objects};
pub use status::ApiError;

/// A fault the next pods meet on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFault {
    /// The image cannot be pulled (`ErrImagePull`, then `ImagePullBackOff`).
    ImagePull,
    /// The container is OOM-killed (exit 137, reason `OOMKilled`).
    OomKilled,
    /// The pod's `activeDeadlineSeconds` passes right after the container started.
    DeadlineExceeded,
    /// The node evicts the pod while it runs.
    Evicted,
}

/// A fault the next API calls meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFault {
    /// `create`, `get`, `list`, `watch`, `delete` or `log`.
    pub verb: &'static str,
    /// `pods` or `configmaps`.
    pub resource: &'static str,
    /// The HTTP status answered (500, 503, 403…).
    pub code: u16,
    /// How many calls fail.
    pub times: u32,
}

/// What the kubelet is told by the API side.
#[derive(Debug)]
pub(crate) enum KubeletCommand {
    Start(String, String),
}

/// Shared state of the server and its kubelet.
pub(crate) struct Cluster {
    objects: Mutex<Objects>,
    pod_faults: Mutex<VecDeque<PodFault>>,
    call_faults: Mutex<Vec<CallFault>>,
    quota_refusals: Mutex<u32>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// Pods stored by a create, by name (a pod created twice for one execution shows 2).
    pods_created: Mutex<BTreeMap<String, u64>>,
    kubelet: mpsc::UnboundedSender<KubeletCommand>,
    runs: Mutex<HashMap<Key, CancellationToken>>,
    /// Bumped to end every open watch.
    watch_epoch: watch::Sender<u64>,
    /// Create calls of this resource wait while set (`hold_creates`).
    held: Mutex<Option<&'static str>>,
    /// Whether held creates complete once released (else they fail with 503).
    complete_held: Mutex<bool>,
    release: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Objects> {
        lock(&self.objects)
    }

    pub(crate) fn runs_lock(&self) -> MutexGuard<'_, HashMap<Key, CancellationToken>> {
        lock(&self.runs)
    }

    pub(crate) fn count(&self, what: &str) {
        *lock(&self.calls).entry(what.to_owned()).or_default() += 1;
    }

    /// Counts a pod stored by a create.
    pub(crate) fn count_pod_created(&self, name: &str) {
        *lock(&self.pods_created).entry(name.to_owned()).or_default() += 1;
    }

    /// Counts an API call and answers an injected fault, if one matches; create calls wait
    /// while creates are held.
    pub(crate) async fn call(&self, verb: &str, resource: &str) -> Result<(), ApiError> {
        self.count(&format!("{verb} {resource}"));
        if verb == "create" {
            let mut waited = false;
            loop {
                let released = self.release.notified();
                if *lock(&self.held) != Some(resource) {
                    break;
                }
                waited = true;
                released.await;
            }
            if waited && !*lock(&self.complete_held) {
                return Err(ApiError {
                    code: 503,
                    reason: "ServiceUnavailable",
                    message: format!("the API server stopped before storing the {resource}"),
                    details: None,
                });
            }
        }
        let mut faults = lock(&self.call_faults);
        if let Some(i) = faults
            .iter()
            .position(|f| f.verb == verb && f.resource == resource && f.times > 0)
        {
            let fault = &mut faults[i];
            fault.times -= 1;
            let code = fault.code;
            if fault.times == 0 {
                faults.remove(i);
            }
            let reason = match code {
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                _ => "InternalError",
            };
            return Err(ApiError {
                code,
                reason,
                message: format!("injected failure of {verb} {resource}"),
                details: None,
            });
        }
        Ok(())
    }

    /// A pod create refused by an injected quota refusal (403 `exceeded quota`).
    pub(crate) fn quota_check(&self, name: &str) -> Result<(), ApiError> {
        let mut refusals = lock(&self.quota_refusals);
        if *refusals == 0 {
            return Ok(());
        }
        *refusals -= 1;
        Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "pods \"{name}\" is forbidden: exceeded quota: executor-quota, requested: limits.memory=256Mi, used: limits.memory=4Gi, limited: limits.memory=4Gi"
            ),
            details: Some(("pods".to_owned(), name.to_owned())),
        })
    }

    pub(crate) fn next_pod_fault(&self) -> Option<PodFault> {
        lock(&self.pod_faults).pop_front()
    }
}

/// A running fake API server with its kubelet.
pub struct FakeCluster {
    url: String,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FakeCluster {
    /// Starts the server on a free loopback port; pods run through `executor` on node
    /// `node_name`.
    pub async fn start(executor: Arc<dyn Executor>, node_name: &str) -> std::io::Result<Self> {
        let (kubelet_tx, kubelet_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            objects: Mutex::new(Objects::new()),
            pod_faults: Mutex::default(),
            call_faults: Mutex::default(),
            quota_refusals: Mutex::default(),
            calls: Mutex::default(),
            pods_created: Mutex::default(),
            kubelet: kubelet_tx,
            runs: Mutex::default(),
            watch_epoch: watch::channel(0).0,
            held: Mutex::new(None),
            complete_held: Mutex::new(true),
            release: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let app = routes::router(cluster.clone());
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "fake API server stopped");
            }
        });
        let kubelet = tokio::spawn(kubelet::run(
            cluster.clone(),
            executor,
            node_name.to_owned(),
            kubelet_rx,
            shutdown.clone(),
        ));
        Ok(Self {
            url,
            cluster,
            shutdown,
            tasks: vec![server, kubelet],
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A real kube client for this server, with `namespace` as its default namespace.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let uri = self.url.parse().unwrap_or_default();
        let mut config = kube::Config::new(uri);
        config.default_namespace = namespace.to_owned();
        config.default_retry = false;
        kube::Client::try_from(config)
            .unwrap_or_else(|e| panic!("client for the fake API server: {e}"))
    }

    /// The next pod started meets `fault`.
    pub fn inject_pod_fault(&self, fault: PodFault) {
        lock(&self.cluster.pod_faults).push_back(fault);
    }

    /// The next matching API calls fail.
    pub fn inject_call_fault(&self, fault: CallFault) {
        lock(&self.cluster.call_faults).push(fault);
    }

    /// Forgets the injected call faults not met yet.
    pub fn clear_call_faults(&self) {
        lock(&self.cluster.call_faults).clear();
    }

    /// The next `times` pod creates are refused by the namespace's resource quota.
    pub fn refuse_by_quota(&self, times: u32) {
        *lock(&self.cluster.quota_refusals) += times;
    }

    /// Create calls of `resource` (`pods`, `configmaps`) wait, after being counted, until
    /// [`FakeCluster::release_creates`]. A held call completes even if its client went away.
    pub fn hold_creates(&self, resource: &'static str) {
        *lock(&self.cluster.held) = Some(resource);
    }

    /// Lets held creates go on: they complete (`complete`), or fail with 503 as if the server
    /// stopped before storing the object.
    pub fn release_creates(&self, complete: bool) {
        *lock(&self.cluster.complete_held) = complete;
        *lock(&self.cluster.held) = None;
        self.cluster.release.notify_waiters();
    }

    /// Ends every open watch and forgets the change history: a watch resuming from a version
    /// seen before gets `410 Gone` and must list again.
    pub fn expire_watches(&self) {
        self.cluster.lock().expire_history();
        self.cluster.watch_epoch.send_modify(|e| *e += 1);
    }

    /// API calls so far, by `"<verb> <resource>"` (and `"watch-event <resource>"` for each
    /// event sent on a watch).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.cluster.calls).clone()
    }

    /// How many times a pod of each name was stored by a create (deleted pods included).
    pub fn pods_created(&self) -> BTreeMap<String, u64> {
        lock(&self.cluster.pods_created).clone()
    }

    pub fn pods(&self) -> Vec<Pod> {
        self.cluster.lock().pods.values().cloned().collect()
    }

    pub fn config_maps(&self) -> Vec<ConfigMap> {
        self.cluster.lock().config_maps.values().cloned().collect()
    }

    /// Deletes a pod as someone outside integr8s would (as `kubectl delete pod` does).
    pub async fn delete_pod_from_outside(&self, namespace: &str, name: &str) {
        let client = self.client(namespace);
        let pods: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
        if let Err(e) = pods.delete(name, &Default::default()).await {
            tracing::warn!(error = %e, "deleting a pod from outside failed");
        }
    }

    /// Stops the server and the kubelet (runs in progress are cancelled).
    pub async fn stop(self) {
        self.shutdown.cancel();
        for run in self.cluster.runs_lock().values() {
            run.cancel();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
