//! Delivery, email and event metrics, exported in Prometheus text format.
//!
//! Counters are bumped where things happen, and events where they are
//! committed: the store reports every event it commits to the log
//! ([`tidings_store::EventObserver`], implemented here), whichever use case
//! recorded it — sending, tracking, inbound reports, the API. So
//! `events_recorded`, `recipients` and `engagements` agree with the log by
//! construction, and a new producer of events cannot forget to count.
//!
//! Queue depths and the ages of the oldest waiting items are read from the
//! store at scrape time (they are facts about the database, not about this
//! process, and must be right on every node).
//!
//! Names and label values live in [`vocabulary`], once.

pub mod vocabulary;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use tidings_store::{CommittedEvent, EventObserver};
use tidings_types::EventType;

pub use vocabulary::{
    Agent, Endpoint, EndpointLabels, Engagement, EngagementLabels, Interface, InterfaceLabels,
    Listener, ListenerLabels, Name, Outcome, OutcomeLabels, RecipientLabels, RecipientOutcome,
    RefusalReason, RefusedLabels, ReportKind, ReportLabels, Type, TypeLabels,
};

type SecondsGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Every metric tidings exports.
pub struct Metrics {
    pub events_recorded: Family<TypeLabels, Counter>,
    pub messages_accepted: Family<InterfaceLabels, Counter>,
    pub recipients: Family<RecipientLabels, Counter>,
    pub engagements: Family<EngagementLabels, Counter>,
    pub inbound_reports: Family<ReportLabels, Counter>,
    pub smtp_sessions: Family<ListenerLabels, Counter>,
    pub smtp_auth_failures: Counter,
    pub connections_refused: Family<RefusedLabels, Counter>,
    pub connections_open: Family<EndpointLabels, Gauge>,
    pub outbound_queue_depth: Gauge,
    pub outbound_queue_oldest_age: SecondsGauge,
    pub attempts: Family<OutcomeLabels, Counter>,
    pub delivery_latency: Histogram,
    pub queue_depth: Gauge,
    pub queue_held: Gauge,
    pub oldest_pending_seconds: SecondsGauge,
    registry: Registry,
}

/// A family with every one of `labels` created, so each series is
/// exported from zero.
fn family<L>(labels: impl IntoIterator<Item = L>) -> Family<L, Counter>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Counter>::default();
    for l in labels {
        drop(f.get_or_create(&l));
    }
    f
}

fn register(registry: &mut Registry, name: Name, metric: impl Metric) {
    registry.register(name.as_str(), name.help(), metric);
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let events_recorded = family(EventType::ALL.map(|t| TypeLabels { r#type: Type(t) }));
        register(&mut registry, Name::EventsRecorded, events_recorded.clone());
        let messages_accepted = family(
            Interface::ALL
                .iter()
                .map(|&interface| InterfaceLabels { interface }),
        );
        register(
            &mut registry,
            Name::MessagesAccepted,
            messages_accepted.clone(),
        );
        let recipients = family(
            RecipientOutcome::ALL
                .iter()
                .map(|&outcome| RecipientLabels { outcome }),
        );
        register(&mut registry, Name::Recipients, recipients.clone());
        let engagements = family(Engagement::ALL.iter().flat_map(|&e| {
            Agent::ALL
                .iter()
                .map(move |&agent| EngagementLabels { r#type: e, agent })
        }));
        register(&mut registry, Name::Engagements, engagements.clone());
        let inbound_reports = family(ReportKind::ALL.iter().map(|&kind| ReportLabels { kind }));
        register(&mut registry, Name::InboundReports, inbound_reports.clone());
        let smtp_sessions = family(
            Listener::ALL
                .iter()
                .map(|&listener| ListenerLabels { listener }),
        );
        register(&mut registry, Name::SmtpSessions, smtp_sessions.clone());
        let smtp_auth_failures = Counter::default();
        register(
            &mut registry,
            Name::SmtpAuthFailures,
            smtp_auth_failures.clone(),
        );
        let connections_refused = family(Endpoint::ALL.iter().flat_map(|&listener| {
            RefusalReason::ALL
                .iter()
                .map(move |&reason| RefusedLabels { listener, reason })
        }));
        register(
            &mut registry,
            Name::ConnectionsRefused,
            connections_refused.clone(),
        );
        let connections_open = Family::<EndpointLabels, Gauge>::default();
        for &listener in Endpoint::ALL {
            drop(connections_open.get_or_create(&EndpointLabels { listener }));
        }
        register(
            &mut registry,
            Name::ConnectionsOpen,
            connections_open.clone(),
        );
        let outbound_queue_depth = Gauge::default();
        register(
            &mut registry,
            Name::OutboundQueueDepth,
            outbound_queue_depth.clone(),
        );
        let outbound_queue_oldest_age = SecondsGauge::default();
        register(
            &mut registry,
            Name::OutboundQueueOldestAge,
            outbound_queue_oldest_age.clone(),
        );
        let attempts = family(
            Outcome::ALL
                .iter()
                .map(|&outcome| OutcomeLabels { outcome }),
        );
        register(&mut registry, Name::WebhookAttempts, attempts.clone());
        let delivery_latency = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
        ]);
        register(
            &mut registry,
            Name::EventDeliveryLatency,
            delivery_latency.clone(),
        );
        let queue_depth = Gauge::default();
        register(&mut registry, Name::DeliveryQueueDepth, queue_depth.clone());
        let queue_held = Gauge::default();
        register(&mut registry, Name::DeliveryQueueHeld, queue_held.clone());
        let oldest_pending_seconds = SecondsGauge::default();
        register(
            &mut registry,
            Name::DeliveryOldestPendingAge,
            oldest_pending_seconds.clone(),
        );
        Self {
            events_recorded,
            messages_accepted,
            recipients,
            engagements,
            inbound_reports,
            smtp_sessions,
            smtp_auth_failures,
            connections_refused,
            connections_open,
            outbound_queue_depth,
            outbound_queue_oldest_age,
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

    /// A message was accepted (its recipients queued or dropped).
    pub fn message_accepted(&self, interface: Interface) {
        self.messages_accepted
            .get_or_create(&InterfaceLabels { interface })
            .inc();
    }

    /// An inbound report was handled.
    pub fn inbound_report(&self, kind: ReportKind) {
        self.inbound_reports
            .get_or_create(&ReportLabels { kind })
            .inc();
    }

    /// An SMTP session began.
    pub fn smtp_session(&self, listener: Listener) {
        self.smtp_sessions
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    /// A connection was turned away at a connection limit.
    pub fn connection_refused(&self, listener: Endpoint, reason: RefusalReason) {
        self.connections_refused
            .get_or_create(&RefusedLabels { listener, reason })
            .inc();
    }

    /// A listener admitted a connection.
    pub fn connection_opened(&self, listener: Endpoint) {
        self.connections_open
            .get_or_create(&EndpointLabels { listener })
            .inc();
    }

    /// A connection a listener admitted has closed.
    pub fn connection_closed(&self, listener: Endpoint) {
        self.connections_open
            .get_or_create(&EndpointLabels { listener })
            .dec();
    }

    /// Set the outbound queue's gauges from what the store says.
    pub fn set_outbound_queue(&self, depth: u64, oldest_age_seconds: f64) {
        self.outbound_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.outbound_queue_oldest_age.set(oldest_age_seconds);
    }

    /// The registry in Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl EventObserver for Metrics {
    fn committed(&self, events: &[CommittedEvent]) {
        for e in events {
            self.events_recorded
                .get_or_create(&TypeLabels {
                    r#type: Type(e.event_type),
                })
                .inc();
            if let Some(outcome) = RecipientOutcome::of(e.event_type, e.variant) {
                self.recipients
                    .get_or_create(&RecipientLabels { outcome })
                    .inc();
            }
            if let Some((engagement, agent)) = Engagement::of(e.event_type, e.variant) {
                self.engagements
                    .get_or_create(&EngagementLabels {
                        r#type: engagement,
                        agent,
                    })
                    .inc();
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidings_types::Variant;

    /// Every metric the registry exports, and only those, are in the
    /// table of docs/metrics.md.
    #[test]
    fn every_metric_is_exported_and_documented() {
        let text = Metrics::new().encode();
        let doc = include_str!("../../../docs/metrics.md");
        let exported: Vec<String> = Name::ALL.iter().map(|n| n.exported()).collect();
        for row in doc.lines().filter_map(|l| l.strip_prefix("| `")) {
            let documented = row.split('`').next().unwrap_or_default();
            assert!(
                exported.iter().any(|e| e == documented),
                "docs/metrics.md lists {documented}, which is not exported"
            );
        }
        for name in Name::ALL {
            let exported = name.exported();
            assert!(
                text.contains(&format!("# HELP tidings_{} ", name.as_str())),
                "{exported} is not registered:\n{text}"
            );
            assert!(
                doc.contains(&format!("| `{exported}` |")),
                "{exported} is not in docs/metrics.md"
            );
        }
    }

    #[test]
    fn committed_events_are_counted_by_type_outcome_and_agent() {
        let m = Metrics::new();
        let ev = |event_type, variant| CommittedEvent {
            event_type,
            variant,
        };
        m.committed(&[
            ev(EventType::Sent, Variant::None),
            ev(EventType::Bounce, Variant::HardBounce),
            ev(EventType::Bounce, Variant::SoftBounce),
            ev(EventType::Open, Variant::Machine),
            ev(EventType::Click, Variant::Human),
            ev(EventType::Complaint, Variant::None),
        ]);
        let text = m.encode();
        for line in [
            "tidings_events_recorded_total{type=\"sent\"} 1",
            "tidings_events_recorded_total{type=\"bounce\"} 2",
            "tidings_events_recorded_total{type=\"complaint\"} 1",
            "tidings_events_recorded_total{type=\"deferred\"} 0",
            "tidings_recipients_total{outcome=\"sent\"} 1",
            "tidings_recipients_total{outcome=\"bounced_hard\"} 1",
            "tidings_recipients_total{outcome=\"bounced_soft\"} 1",
            "tidings_recipients_total{outcome=\"dropped\"} 0",
            "tidings_engagements_total{type=\"open\",agent=\"machine\"} 1",
            "tidings_engagements_total{type=\"open\",agent=\"human\"} 0",
            "tidings_engagements_total{type=\"click\",agent=\"human\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
