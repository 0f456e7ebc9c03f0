//! `POST /api/v1/execute?wait=true` (an integr8s extension): one round trip for clients that
//! want the result, not the id. The answer comes when the execution has ended, or at the latest
//! after the run's time limit plus [`WAIT_GRACE`] (time for the queue and the hops around the
//! run), with whatever status it has then; the client polls `GET .../result` from there.
//!
//! A waiting request holds a place among the event streams of its user and of the process
//! ([`crate::streams::StreamHub::open`]), so waiting requests are bounded like streams are.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use integr8s_core::Execution;

use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::state::AppState;

/// Time allowed beyond the run's own time limit: queueing, scheduling and storing the result.
pub const WAIT_GRACE: Duration = Duration::from_secs(10);

/// The store is read again this often, for an ending that the event routing missed (an event
/// written by another process that the bus did not bring).
const RECHECK: Duration = Duration::from_secs(1);

/// The `wait` query parameter, read (and refused with a 422 naming it) before the body.
pub struct Wait(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryPairs::from_request_parts(parts, state).await?;
        wanted(&query).map(Wait)
    }
}

/// The `wait` query parameter, read like the contract's boolean query parameters; absent is
/// `false`.
pub fn wanted(query: &QueryPairs) -> Result<bool, ApiError> {
    let Some(raw) = query.get("wait") else {
        return Ok(false);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(ApiError::invalid(
            &["query", "wait"],
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )),
    }
}

/// Waits for execution `id` to end and answers it as stored then; at the deadline (the run's
/// time limit plus [`WAIT_GRACE`] from now) answers it as it is.
pub async fn until_ended(state: &AppState, id: &str) -> Result<Execution, ApiError> {
    // Routed from now on, before the store is read: an ending in between is not missed.
    let mut events = state.streams.execution(state.store.clone(), &state.bus, id);
    let mut execution = load(state, id).await?;
    let limit = Duration::from_secs(execution.limits.timeout_seconds);
    let deadline = tokio::time::Instant::now() + limit + WAIT_GRACE;
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !execution.status.is_terminal() {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            _ = recheck.tick() => {}
            event = events.next() => match event {
                Some(e) if !e.envelope.event_type().ends_pipeline() => continue,
                // An ending event, or the hub is gone: the store says what happened.
                _ => {}
            },
        }
        execution = load(state, id).await?;
    }
    Ok(execution)
}

async fn load(state: &AppState, id: &str) -> Result<Execution, ApiError> {
    state
        .store
        .execution(id)
        .await?
        .ok_or_else(|| ApiError::execution_not_found(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> QueryPairs {
        QueryPairs(serde_urlencoded::from_str(q).unwrap())
    }

    #[test]
    fn wait_reads_booleans_and_refuses_the_rest() {
        assert!(!wanted(&query("")).unwrap());
        for yes in ["wait=true", "wait=1", "wait=True", "wait=yes", "wait=on"] {
            assert!(wanted(&query(yes)).unwrap(), "{yes}");
        }
        for no in ["wait=false", "wait=0", "wait=no", "wait=off"] {
            assert!(!wanted(&query(no)).unwrap(), "{no}");
        }
        for bad in ["wait=", "wait=maybe", "wait=2"] {
            assert!(wanted(&query(bad)).is_err(), "{bad}");
        }
    }
}
