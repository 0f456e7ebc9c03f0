//! What is checked of a slot around a run: whether its waiting sandbox is still fit for the
//! next run (nothing but the sandbox in its cgroup, no memory left behind), and whether an
//! interpreter started ahead is in a run's way.

use std::sync::Arc;
use std::time::Duration;

use crate::cgroup::RunCgroup;
use crate::launch::Launch;
use crate::sys;

/// What an interpreter started ahead may still grow to while it starts.
const PRESTART_HEADROOM: u64 = 64 * 1024 * 1024;

/// Whether the interpreter `waiting` started ahead is not this run's (it is killed when the job
/// arrives) and could, until then, push the slot past the run's memory limit: such a run is
/// given a new sandbox instead, so that neither its limits fail to apply nor an out-of-memory
/// kill of that interpreter counts as the run's.
pub(crate) fn interpreter_in_the_way(
    waiting: &Launch,
    prestart: Option<&Arc<[u8]>>,
    cgroup: &RunCgroup,
    memory_limit: u64,
) -> bool {
    let Some(started) = &waiting.prestarted else {
        return false;
    };
    let ours = prestart.is_some_and(|spec| spec[..] == started[..]);
    // File cache (the interpreter's own files, read by earlier runs too) is reclaimed when the
    // limit is lowered; what counts is what cannot be.
    !ours
        && cgroup
            .unreclaimable_memory()
            .saturating_add(PRESTART_HEADROOM)
            > memory_limit
}

/// Whether `cgroup` holds nothing but the sandbox of bubblewrap `bwrap` between two runs:
/// bubblewrap, its shim, and at most the shim's next run init (a child the shim starts as soon
/// as it has reported), and no exited task still charged to it.
pub(crate) fn holds_only_the_sandbox(cgroup: &RunCgroup, bwrap: i32) -> bool {
    let shim = sys::children(bwrap);
    let [shim] = shim[..] else {
        return false;
    };
    let Some((members, charged)) = cgroup.members() else {
        return false;
    };
    // Read after the members: a run init listed there is a child by now (or gone: refused).
    let next_init = sys::children(shim);
    let allowed = |pid: &i32| *pid == bwrap || *pid == shim || next_init.contains(pid);
    members.contains(&bwrap)
        && members.contains(&shim)
        && members.len() <= 3
        && members.iter().all(allowed)
        && charged <= members.len() as u64
}

/// Whether the cgroup's memory, kernel memory included and file cache excluded, is at most
/// `limit`. Memory charged just after a run may still be on its way out (a mount namespace is
/// torn down after its last process is reaped), and kernel caches a run filled (dentries,
/// inodes) count until they are reclaimed; so an excess is looked at again after a short
/// pause, then after asking the kernel to reclaim it, before it counts.
pub(crate) async fn no_memory_left(cgroup: &RunCgroup, limit: u64) -> bool {
    if cgroup.unreclaimable_memory() <= limit {
        return true;
    }
    tokio::time::sleep(LEFTOVER_RECHECK_PAUSE).await;
    if cgroup.unreclaimable_memory() <= limit {
        return true;
    }
    cgroup.reclaim_down_to(limit);
    let held = cgroup.unreclaimable_memory();
    if held <= limit {
        return true;
    }
    tracing::info!(
        held,
        limit,
        "a run left memory in its slot; the sandbox is retired"
    );
    false
}

const LEFTOVER_RECHECK_PAUSE: Duration = Duration::from_millis(5);
