//! Execution figures: how many were submitted, how they ended, how long the client waited for
//! each result, and how long each waited in the queue (from the execution's stored events).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::latency::{Latencies, LatencySummary};

#[derive(Debug)]
pub struct Executions {
    submitted: u64,
    by_status: BTreeMap<String, u64>,
    unfinished: u64,
    wrong_results: u64,
    end_to_end: Latencies,
    queue_wait: Latencies,
}

impl Default for Executions {
    fn default() -> Self {
        Self {
            submitted: 0,
            by_status: BTreeMap::new(),
            unfinished: 0,
            wrong_results: 0,
            end_to_end: Latencies::precise(),
            queue_wait: Latencies::precise(),
        }
    }
}

impl Executions {
    pub fn submitted(&mut self) {
        self.submitted += 1;
    }

    /// An execution reached the terminal `status`, `end_to_end` after its submission began.
    pub fn finished(&mut self, status: &str, end_to_end: Duration) {
        *self.by_status.entry(status.to_owned()).or_default() += 1;
        self.end_to_end.record(end_to_end);
    }

    /// An execution whose result the client stopped waiting for (deadline or end of the run).
    pub fn unfinished(&mut self) {
        self.unfinished += 1;
    }

    /// An execution that ended, but not the way its script must end.
    pub fn wrong_result(&mut self) {
        self.wrong_results += 1;
    }

    pub fn queue_wait(&mut self, wait: Duration) {
        self.queue_wait.record(wait);
    }

    pub fn report(&self, elapsed: Duration) -> ExecutionReport {
        let finished: u64 = self.by_status.values().sum();
        let secs = elapsed.as_secs_f64().max(1e-9);
        ExecutionReport {
            submitted: self.submitted,
            finished,
            finished_by_status: self.by_status.clone(),
            unfinished: self.unfinished,
            wrong_results: self.wrong_results,
            finished_per_second: (finished as f64 / secs * 100.0).round() / 100.0,
            completed_per_second: (self.by_status.get("completed").copied().unwrap_or(0) as f64
                / secs
                * 100.0)
                .round()
                / 100.0,
            end_to_end_ms: self.end_to_end.summary(),
            queue_wait_ms: self.queue_wait.summary(),
            queue_wait_samples: self.queue_wait.len(),
        }
    }
}

/// The execution part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionReport {
    /// Submissions the server accepted (200 from `POST /api/v1/execute`).
    pub submitted: u64,
    /// Executions whose terminal result the client saw.
    pub finished: u64,
    /// Those, by terminal status (`completed`, `failed`, `timeout`, `error`, `cancelled`).
    pub finished_by_status: BTreeMap<String, u64>,
    /// Executions still without a terminal result when the client stopped waiting.
    pub unfinished: u64,
    /// Finished executions whose status or output was not what their script must give.
    pub wrong_results: u64,
    pub finished_per_second: f64,
    pub completed_per_second: f64,
    /// From the start of the submission to the terminal result seen by the client.
    pub end_to_end_ms: LatencySummary,
    /// From `execution_queued` (or `execution_requested`) to `execution_started`, by the
    /// timestamps of the stored events.
    pub queue_wait_ms: LatencySummary,
    pub queue_wait_samples: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up() {
        let mut e = Executions::default();
        for _ in 0..4 {
            e.submitted();
        }
        e.finished("completed", Duration::from_millis(20));
        e.finished("completed", Duration::from_millis(40));
        e.finished("failed", Duration::from_millis(30));
        e.unfinished();
        e.queue_wait(Duration::from_millis(2));
        let r = e.report(Duration::from_secs(2));
        assert_eq!(r.submitted, 4);
        assert_eq!(r.finished, 3);
        assert_eq!(r.finished_by_status["completed"], 2);
        assert_eq!(r.unfinished, 1);
        assert_eq!(r.completed_per_second, 1.0);
        assert_eq!(r.finished_per_second, 1.5);
        assert!((r.end_to_end_ms.max - 40.0).abs() <= 0.04);
        assert_eq!(r.queue_wait_samples, 1);
    }
}
