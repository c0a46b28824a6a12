//! Auto-replies (RFC 3834, vacation and out-of-office messages).
//!
//! The catch: DSNs and Exim's bounces also carry `Auto-Submitted:
//! auto-replied`. So the evidence is graded. Strong evidence (a vacation
//! header or subject, `X-Autoreply`, `Precedence: auto_reply`) wins over
//! the plain-text bounce heuristics; weak evidence (`Auto-Submitted` alone)
//! only labels a message nothing else recognised.

use crate::headers::{first_address, Headers};
use crate::model::AutoReply;

/// How sure we are that a message is an automatic reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    /// No sign at all.
    None,
    /// Only `Auto-Submitted: auto-replied` or similar.
    Weak,
    /// A vacation/auto-reply header or subject.
    Strong,
}

const SUBJECT_PREFIXES: &[&str] = &[
    "auto:",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automatic reply",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "respuesta automática",
    "risposta automatica",
    "out of office",
    "out of the office",
    "away from my mail",
    "on vacation",
    "vacation",
    "abwesenheit",
    "absence",
    "i am out",
    "i'm out",
    "自動応答",
    "自動返信",
    "不在",
];

/// Grades the auto-reply evidence in a report's headers.
pub fn evidence(top: &Headers) -> Evidence {
    let from = top.get("from").unwrap_or("").to_ascii_lowercase();
    if from.contains("mailer-daemon") || from.contains("postmaster") {
        return Evidence::None;
    }
    let has = |n: &str| top.get(n).is_some();
    let val = |n: &str| top.get(n).unwrap_or("").to_ascii_lowercase();
    if has("x-autoreply")
        || has("x-autorespond")
        || has("x-autoresponder")
        || val("x-apple-action") == "vacation"
        || val("precedence").contains("auto_reply")
        || val("x-auto-response-suppress").contains("oof")
            && val("auto-submitted").starts_with("auto-replied")
        || val("x-vacation").starts_with("yes")
    {
        return Evidence::Strong;
    }
    let subject = val("subject");
    let subject = subject.trim_start();
    let subject = subject.strip_prefix("re:").unwrap_or(subject).trim_start();
    if SUBJECT_PREFIXES.iter().any(|p| subject.starts_with(p)) {
        return Evidence::Strong;
    }
    let auto = val("auto-submitted");
    if auto.starts_with("auto-replied") || auto.starts_with("auto-notified") {
        return Evidence::Weak;
    }
    Evidence::None
}

/// The [`AutoReply`] for a message judged to be one.
pub fn report(top: &Headers, subject: Option<String>) -> AutoReply {
    AutoReply {
        from: top.get("from").and_then(first_address),
        subject: subject.or_else(|| top.get("subject").map(str::to_string)),
    }
}
