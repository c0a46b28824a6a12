//! Delivery and event metrics, exported in Prometheus text format.
//!
//! Counters and the latency histogram are updated where things happen;
//! queue depth and the age of the oldest pending delivery are read from the
//! store at scrape time (they are facts about the database, not about this
//! process, and must be right on every node).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
}

impl EncodeLabelValue for Outcome {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

/// Every metric tidings exports.
pub struct Metrics {
    pub events_recorded: Counter,
    pub attempts: Family<OutcomeLabels, Counter>,
    pub delivery_latency: Histogram,
    pub queue_depth: Gauge,
    pub queue_held: Gauge,
    pub oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let events_recorded = Counter::default();
        registry.register(
            "events_recorded",
            "Events committed to the log",
            events_recorded.clone(),
        );
        let attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome",
            attempts.clone(),
        );
        let delivery_latency = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
        ]);
        registry.register(
            "event_delivery_latency_seconds",
            "Time from an event's commit to its first successful delivery",
            delivery_latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "delivery_queue_depth",
            "Webhook deliveries not yet made, including held ones",
            queue_depth.clone(),
        );
        let queue_held = Gauge::default();
        registry.register(
            "delivery_queue_held",
            "Webhook deliveries held because their event type is paused",
            queue_held.clone(),
        );
        let oldest_pending_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "delivery_oldest_pending_age_seconds",
            "Age of the oldest event with a delivery still pending (not held)",
            oldest_pending_seconds.clone(),
        );
        Self {
            events_recorded,
            attempts,
            delivery_latency,
            queue_depth,
            queue_held,
            oldest_pending_seconds,
            registry,
        }
    }

    pub fn record_attempt(&self, delivered: bool) {
        let outcome = if delivered {
            Outcome::Delivered
        } else {
            Outcome::Failed
        };
        self.attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The registry in Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
