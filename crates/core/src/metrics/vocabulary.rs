//! Every metric name and label value tidings exports, named once.
//!
//! Names follow the Prometheus conventions: a `tidings_` prefix (added by
//! the registry), base units (`_seconds`), and `_total` on counters (added
//! by the OpenMetrics encoder). Label values are enums, so a producer
//! cannot invent one: each family is created with all of its label sets
//! at start, so every series exists from zero and `rate()` works from the
//! first scrape.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use tidings_types::{EventType, Variant};

/// An enum of label values: `ALL`, `as_str`, and the Prometheus encoding.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

/// The metric names, without the `tidings_` prefix and `_total` suffix,
/// and their help texts.
macro_rules! metric_names {
    ($($variant:ident = $name:literal, $kind:ident, $help:literal;)*) => {
        /// One exported metric.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Name { $($variant),* }

        impl Name {
            pub const ALL: &'static [Name] = &[$(Name::$variant),*];

            /// The name as registered (the registry adds the prefix).
            pub fn as_str(self) -> &'static str {
                match self { $(Name::$variant => $name),* }
            }

            pub fn help(self) -> &'static str {
                match self { $(Name::$variant => $help),* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Name::$variant => Kind::$kind),* }
            }
        }
    };
}

/// What kind of metric a [`Name`] is, which decides its exported name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

metric_names! {
    EventsRecorded = "events_recorded", Counter,
        "Events committed to the log, by type";
    MessagesAccepted = "messages_accepted", Counter,
        "Messages accepted for delivery, by the interface they came in on";
    Recipients = "recipients", Counter,
        "Recipient outcomes: sent, deferred (each deferral), bounced (hard or soft, from the SMTP reply or a DSN), blocked, dropped";
    Engagements = "engagements", Counter,
        "Recorded opens and clicks, by whether a person or software made them";
    InboundReports = "inbound_reports", Counter,
        "Reports received as mail (inbound MX, POST /v1/inbound), by kind";
    SmtpSessions = "smtp_sessions", Counter,
        "SMTP sessions started, by listener";
    SmtpAuthFailures = "smtp_auth_failures", Counter,
        "Failed or refused AUTH attempts on the submission listener";
    ConnectionsRefused = "connections_refused", Counter,
        "Connections turned away at a connection limit, by listener and limit";
    ConnectionsOpen = "connections_open", Gauge,
        "Connections admitted and not yet closed, by listener";
    OutboundQueueDepth = "outbound_queue_depth", Gauge,
        "Recipients waiting for a delivery attempt (queued, deferred or in flight)";
    OutboundQueueOldestAge = "outbound_queue_oldest_age_seconds", Gauge,
        "Time since the oldest recipient still waiting was accepted";
    WebhookAttempts = "webhook_attempts", Counter,
        "Webhook delivery attempts by outcome";
    EventDeliveryLatency = "event_delivery_latency_seconds", Histogram,
        "Time from an event's commit to its first successful delivery";
    DeliveryQueueDepth = "delivery_queue_depth", Gauge,
        "Webhook deliveries not yet made, including held ones";
    DeliveryQueueHeld = "delivery_queue_held", Gauge,
        "Webhook deliveries held because their event type is paused";
    DeliveryOldestPendingAge = "delivery_oldest_pending_age_seconds", Gauge,
        "Age of the oldest event with a delivery still pending (not held)";
}

impl Name {
    /// The name a scrape shows (for a histogram, the stem of its series).
    pub fn exported(self) -> String {
        match self.kind() {
            Kind::Counter => format!("tidings_{}_total", self.as_str()),
            Kind::Gauge | Kind::Histogram => format!("tidings_{}", self.as_str()),
        }
    }
}

label_values! {
    /// How a webhook delivery attempt ended.
    Outcome {
        Delivered = "delivered",
        Failed = "failed",
    }
}

label_values! {
    /// Where a message came in.
    Interface {
        Http = "http",
        Smtp = "smtp",
    }
}

impl From<tidings_store::Source> for Interface {
    fn from(s: tidings_store::Source) -> Self {
        match s {
            tidings_store::Source::Http => Interface::Http,
            tidings_store::Source::Smtp => Interface::Smtp,
        }
    }
}

label_values! {
    /// What happened to a recipient.
    RecipientOutcome {
        Sent = "sent",
        Deferred = "deferred",
        BouncedHard = "bounced_hard",
        BouncedSoft = "bounced_soft",
        Blocked = "blocked",
        Dropped = "dropped",
    }
}

impl RecipientOutcome {
    /// The outcome an event of the log records, if it records one.
    pub fn of(event_type: EventType, variant: Variant) -> Option<Self> {
        Some(match (event_type, variant) {
            (EventType::Sent, _) => Self::Sent,
            (EventType::Deferred, _) => Self::Deferred,
            (EventType::Bounce, Variant::HardBounce) => Self::BouncedHard,
            (EventType::Bounce, _) => Self::BouncedSoft,
            (EventType::Block, _) => Self::Blocked,
            (EventType::Dropped, _) => Self::Dropped,
            _ => return None,
        })
    }
}

label_values! {
    /// An engagement the tracking endpoints record.
    Engagement {
        Open = "open",
        Click = "click",
    }
}

label_values! {
    /// Who made an engagement: a person, or software (privacy proxies and
    /// prefetchers for opens, link scanners for clicks).
    Agent {
        Human = "human",
        Machine = "machine",
    }
}

impl Engagement {
    /// The engagement an event of the log records, and by whom.
    pub fn of(event_type: EventType, variant: Variant) -> Option<(Self, Agent)> {
        let engagement = match event_type {
            EventType::Open => Self::Open,
            EventType::Click => Self::Click,
            _ => return None,
        };
        let agent = match variant {
            Variant::Machine => Agent::Machine,
            _ => Agent::Human,
        };
        Some((engagement, agent))
    }
}

label_values! {
    /// What an inbound report turned out to be.
    ReportKind {
        Bounce = "bounce",
        Complaint = "complaint",
        AutoReply = "auto_reply",
        DeliverySuccess = "delivery_success",
        Unrecognised = "unrecognised",
    }
}

label_values! {
    /// An SMTP listener.
    Listener {
        Submission = "submission",
        Inbound = "inbound",
    }
}

label_values! {
    /// A listener that admits connections within limits.
    Endpoint {
        Http = "http",
        Submission = "submission",
        Inbound = "inbound",
    }
}

label_values! {
    /// The connection limit that turned a connection away.
    RefusalReason {
        /// Every slot of the listener was taken.
        TotalLimit = "total_limit",
        /// The client's address held its share of the slots.
        PerIpLimit = "per_ip_limit",
    }
}

/// An event type as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Type(pub EventType);

impl EncodeLabelValue for Type {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub r#type: Type,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterfaceLabels {
    pub interface: Interface,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecipientLabels {
    pub outcome: RecipientOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngagementLabels {
    pub r#type: Engagement,
    pub agent: Agent,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    pub kind: ReportKind,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: Listener,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub listener: Endpoint,
    pub reason: RefusalReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub listener: Endpoint,
}
