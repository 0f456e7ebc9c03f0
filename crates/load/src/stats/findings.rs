//! Findings of the monkey: answers that break the contract (a 5xx, or a malformed body), each
//! with the request that caused it. A bounded number are kept whole; all are counted.

use std::collections::BTreeMap;

use serde::Serialize;

/// Findings kept with their request; later ones are only counted.
const KEPT: usize = 100;

/// One answer that breaks the contract, and the request behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Seconds since the start of the run.
    pub at_s: f64,
    pub reason: String,
    pub method: String,
    /// Path and query, as sent (relative to the base URL).
    pub path: String,
    pub endpoint: String,
    /// Request headers that matter to the answer (content type, CSRF, session).
    pub request_headers: BTreeMap<String, String>,
    /// The request body (text, cut to a few KiB).
    pub request_body: Option<String>,
    pub status: u16,
    pub response_content_type: Option<String>,
    /// The start of the answer's body.
    pub response_body: String,
}

#[derive(Debug, Default)]
pub struct Findings {
    total: u64,
    by_reason: BTreeMap<String, u64>,
    kept: Vec<Finding>,
}

impl Findings {
    pub fn add(&mut self, finding: Finding) {
        self.total += 1;
        *self.by_reason.entry(finding.reason.clone()).or_default() += 1;
        if self.kept.len() < KEPT {
            self.kept.push(finding);
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn report(&self) -> FindingsReport {
        FindingsReport {
            total: self.total,
            by_reason: self.by_reason.clone(),
            kept: self.kept.len(),
            findings: self.kept.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingsReport {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    /// How many of them are listed below (the first ones).
    pub kept: usize,
    pub findings: Vec<Finding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(reason: &str) -> Finding {
        Finding {
            at_s: 0.0,
            reason: reason.to_owned(),
            method: "GET".to_owned(),
            path: "/x".to_owned(),
            endpoint: "/x".to_owned(),
            request_headers: BTreeMap::new(),
            request_body: None,
            status: 500,
            response_content_type: None,
            response_body: String::new(),
        }
    }

    #[test]
    fn all_are_counted_and_a_bounded_number_kept() {
        let mut f = Findings::default();
        for i in 0..(KEPT + 50) {
            f.add(finding(if i % 2 == 0 {
                "server error"
            } else {
                "malformed"
            }));
        }
        let r = f.report();
        assert_eq!(r.total, (KEPT + 50) as u64);
        assert_eq!(r.findings.len(), KEPT);
        assert_eq!(r.by_reason.values().sum::<u64>(), r.total);
    }
}
