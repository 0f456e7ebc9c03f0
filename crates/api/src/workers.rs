//! What the workers can run and whether they are ready, read from their leases in the store
//! (`WorkerStore::live_workers`), not from the API's own host: each worker reports its
//! installed runtimes and its executor's health with every heartbeat.
//!
//! When no worker holds a live lease, the API's own registry applies as given to it (the
//! all-in-one server: its probe of this host; an API alone: what it was configured with), so
//! that submissions are judged the same way while workers restart.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use integr8s_core::ports::WorkerLease;
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_core::StoreError;

use crate::state::AppState;

/// How long a read of the leases serves submissions before it is read again.
const CACHE_FOR: Duration = Duration::from_secs(1);

/// A registry as read from the leases, and when.
type Cached = Option<(Instant, Arc<RuntimeRegistry>)>;

/// A short-lived cache of the runtimes the live workers report. Cheap to clone.
#[derive(Clone, Default)]
pub struct WorkerView {
    cached: Arc<Mutex<Cached>>,
}

impl WorkerView {
    /// The runtimes the live workers can run, read at most [`CACHE_FOR`] ago, or now when
    /// `fresh`.
    pub(crate) async fn runtimes(
        &self,
        state: &AppState,
        fresh: bool,
    ) -> Result<Arc<RuntimeRegistry>, StoreError> {
        if !fresh {
            let cached = self
                .cached
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some((at, registry)) = cached {
                if at.elapsed() < CACHE_FOR {
                    return Ok(registry);
                }
            }
        }
        let leases = live(state).await?;
        let registry = Arc::new(available(&state.registry, &leases));
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), registry.clone()));
        Ok(registry)
    }
}

/// The live leases.
pub(crate) async fn live(state: &AppState) -> Result<Vec<WorkerLease>, StoreError> {
    state.store.live_workers(integr8s_core::now()).await
}

/// `registry`'s definitions with the versions the live workers report (or `registry` as given
/// when no worker is live).
pub(crate) fn available(registry: &RuntimeRegistry, leases: &[WorkerLease]) -> RuntimeRegistry {
    if leases.is_empty() {
        return registry.clone();
    }
    registry.with_reported(leases.iter().flat_map(|l| l.report.runtimes.iter()))
}
