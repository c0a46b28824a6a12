//! The output vocabulary: what [`crate::parse`] returns.
//!
//! Everything here is plain data (serde-serialisable, snake_case), so the
//! caller can store it or turn it into `bounce` / `complaint` events without
//! knowing how it was found.

use serde::{Deserialize, Serialize};

pub use crate::reason::{BounceType, Reason};
pub use crate::status::Status;

/// The classification of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// A delivery failure (final or delayed) for one or more recipients.
    Bounce(Bounce),
    /// A feedback-loop report (ARF, RFC 5965, or a provider's variant).
    Complaint(Complaint),
    /// An automatic reply (RFC 3834, vacation, out-of-office): not a bounce.
    AutoReply(AutoReply),
    /// A DSN whose recipients were all delivered, relayed or expanded.
    DeliverySuccess(DeliverySuccess),
    /// Nothing recognisable: a human reply, spam, or a format we do not know.
    Unrecognised,
}

impl Report {
    /// The bounced recipients, empty unless this is a [`Report::Bounce`].
    pub fn bounced(&self) -> &[BouncedRecipient] {
        match self {
            Report::Bounce(b) => &b.recipients,
            _ => &[],
        }
    }

    /// A short snake_case name of the variant (`bounce`, `complaint`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Report::Bounce(_) => "bounce",
            Report::Complaint(_) => "complaint",
            Report::AutoReply(_) => "auto_reply",
            Report::DeliverySuccess(_) => "delivery_success",
            Report::Unrecognised => "unrecognised",
        }
    }
}

/// A bounce: every recipient it reports as failed or delayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// Never empty.
    pub recipients: Vec<BouncedRecipient>,
    /// `Reporting-MTA` of a DSN, when present.
    pub reporting_mta: Option<String>,
    /// Which detector recognised the message (for diagnostics and metrics).
    pub format: Format,
    /// Headers of the enclosed original message, for correlation.
    pub original: OriginalMessage,
}

/// One failed (or delayed) recipient of a bounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncedRecipient {
    /// The recipient address, lowercased: a DSN's `Original-Recipient`
    /// (the address as it was sent) when given, else `Final-Recipient`,
    /// else the address the text names.
    pub email: String,
    /// Hard: the address itself is bad (suppress it). Soft: anything else.
    pub bounce_type: BounceType,
    /// RFC 3463 status; inferred from the text or the reason when missing.
    pub status: Status,
    /// Why it failed, from a fixed vocabulary.
    pub reason: Reason,
    /// The human-readable text: `Diagnostic-Code` or the MTA's message.
    pub diagnostic: String,
    /// `Remote-MTA` (or the host named in the text), when known.
    pub remote_mta: Option<String>,
    /// `Action` of the DSN, or what the text implies.
    pub action: Action,
    /// The SMTP reply code (e.g. 550) when one was found.
    pub smtp_reply_code: Option<u16>,
}

/// RFC 3464 `Action` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Delivery failed; no more attempts.
    Failed,
    /// Delivery is delayed; the MTA will keep trying.
    Delayed,
    /// Delivered to the recipient's mailbox.
    Delivered,
    /// Relayed to a system that does not send DSNs.
    Relayed,
    /// Delivered and forwarded to several addresses (an alias or list).
    Expanded,
}

impl Action {
    /// Parses an `Action:` value; unknown values give `None`.
    pub fn parse(s: &str) -> Option<Action> {
        let s = s.trim().to_ascii_lowercase();
        let word = s.split(|c: char| !c.is_ascii_alphabetic()).next()?;
        Some(match word {
            "failed" | "failure" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" | "deliverable" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            _ => return None,
        })
    }

    /// True for the actions that mean the message got through.
    pub fn is_success(self) -> bool {
        matches!(self, Action::Delivered | Action::Relayed | Action::Expanded)
    }
}

/// Which detector recognised a bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// RFC 3464 `message/delivery-status` (possibly enriched from the text).
    Dsn,
    /// A provider's JSON notification (Amazon SES style).
    Json,
    /// A non-standard plain-text bounce (qmail, Exim, Sendmail, Exchange, ...).
    Text,
}

/// A feedback-loop complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    /// `Feedback-Type`, lowercased (`abuse`, `fraud`, `virus`, `other`,
    /// `not-spam`, `auth-failure`, `opt-out`, ...); `abuse` when a provider
    /// omits it.
    pub feedback_type: String,
    /// Who sent the report: `User-Agent`, else `Reporting-MTA`, else the
    /// domain of the report's `From`.
    pub reporter: Option<String>,
    /// The complaining recipient: the first of [`Complaint::recipients`].
    pub email: Option<String>,
    /// Every `Original-Rcpt-To` (or the enclosed message's `To:`), lowercased.
    pub recipients: Vec<String>,
    /// `Source-IP`, when given.
    pub source_ip: Option<String>,
    /// `Arrival-Date` (or `Received-Date`) as written, when given.
    pub arrival_date: Option<String>,
    /// Headers of the enclosed original message.
    pub original: OriginalMessage,
}

/// An automatic reply; carries what the caller may want to log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReply {
    /// The replying address (`From`), lowercased.
    pub from: Option<String>,
    /// The reply's subject.
    pub subject: Option<String>,
}

/// A positive DSN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverySuccess {
    /// The recipients reported delivered / relayed / expanded.
    pub recipients: Vec<String>,
    /// Headers of the enclosed original message.
    pub original: OriginalMessage,
}

/// Headers of the original message enclosed in (or quoted by) a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalMessage {
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// `From` address, lowercased.
    pub from: Option<String>,
    /// `To` addresses, lowercased.
    pub to: Vec<String>,
    /// `Subject`, with encoded-words decoded.
    pub subject: Option<String>,
    /// `Return-Path` address, lowercased.
    pub return_path: Option<String>,
    /// Every `X-Tidings-*` header, name as written and value unfolded.
    pub tidings_headers: Vec<(String, String)>,
}

impl OriginalMessage {
    /// True when no header was found.
    pub fn is_empty(&self) -> bool {
        self == &OriginalMessage::default()
    }
}
