//! Metrics and traces of integr8s.
//!
//! Code records through the `metrics` facade with the names of [`catalogue`] (the one list of
//! every metric, its kind, labels and help text; `docs/metrics.md` is checked against it). A
//! process that serves `/metrics` calls [`install`] once; without it every record is a no-op.
//!
//! Traces ([`trace`]): W3C trace-context propagation and the optional OTLP exporter.

pub mod catalogue;
mod recorder;
pub mod trace;

pub use catalogue::{MetricKind, MetricSpec, CATALOGUE};
pub use recorder::{install, MetricsHandle};

/// Re-exported so recording crates need no direct dependency on the facade's version.
pub use metrics;
