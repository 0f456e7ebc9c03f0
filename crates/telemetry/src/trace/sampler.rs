//! The sampler of the exporter, changed at runtime by the admin settings `enable_tracing` and
//! `sampling_rate`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

/// Turns sampling on and off and sets the share of new traces sampled; shared by the sampler
/// and whoever applies the settings.
#[derive(Debug, Clone)]
pub struct SamplingControl {
    enabled: Arc<AtomicBool>,
    rate_bits: Arc<AtomicU64>,
}

impl SamplingControl {
    pub fn new(enabled: bool, rate: f64) -> Self {
        let control = Self {
            enabled: Arc::new(AtomicBool::new(enabled)),
            rate_bits: Arc::new(AtomicU64::new(0)),
        };
        control.set_rate(rate);
        control
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Sets the share of new traces sampled, clamped to 0..=1 (NaN counts as 0).
    pub fn set_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }
}

/// Off: nothing is sampled, not even a trace an incoming `traceparent` asked for. On: a span
/// with a parent follows its parent's decision (so one trace is whole across hops and
/// processes), a new trace is sampled with the configured probability (by trace id).
#[derive(Debug, Clone)]
pub(super) struct RuntimeSampler(pub(super) SamplingControl);

impl ShouldSample for RuntimeSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if !self.0.is_enabled() {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: parent_context
                    .map(|cx| cx.span().span_context().trace_state().clone())
                    .unwrap_or_default(),
            };
        }
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(self.0.rate()))).should_sample(
            parent_context,
            trace_id,
            name,
            span_kind,
            attributes,
            links,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(control: &SamplingControl, trace_id: u128) -> SamplingDecision {
        RuntimeSampler(control.clone())
            .should_sample(
                None,
                TraceId::from(trace_id),
                "s",
                &SpanKind::Internal,
                &[],
                &[],
            )
            .decision
    }

    #[test]
    fn the_rate_and_the_switch_take_effect_at_once() {
        let control = SamplingControl::new(true, 1.0);
        let ids: Vec<u128> = (1..=200u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let sampled = |c: &SamplingControl| {
            ids.iter()
                .filter(|id| decide(c, **id) == SamplingDecision::RecordAndSample)
                .count()
        };
        assert_eq!(sampled(&control), ids.len());
        control.set_rate(0.0);
        assert_eq!(sampled(&control), 0);
        control.set_rate(0.5);
        let half = sampled(&control);
        assert!(half > 0 && half < ids.len(), "{half}");
        control.set_rate(1.0);
        control.set_enabled(false);
        assert_eq!(sampled(&control), 0);
        control.set_rate(f64::NAN);
        assert_eq!(control.rate(), 0.0);
        control.set_rate(7.0);
        assert_eq!(control.rate(), 1.0);
    }
}
