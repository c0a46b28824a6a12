//! Inbound report parser and classifier: raw email bytes in, one [`Report`]
//! out — a bounce with every failed recipient, a feedback-loop complaint,
//! an auto-reply, a positive DSN, or "unrecognised".
//!
//! # Design
//!
//! [`parse`] is a pipeline of pure stages, each with one concern:
//!
//! 1. **Normalise** ([`normalise`]): LF, CRLF and CR-only line endings
//!    become LF, an mbox `From ` line is dropped, and the input is capped.
//!    Every later stage sees one canonical form and a bounded size.
//! 2. **MIME walk** (`mime`): `mail-parser` decodes the structure and
//!    every charset it knows (its `full_encoding`: ISO-2022-JP, Shift_JIS,
//!    EUC-KR, GB2312, KOI8-R, ...); the walk
//!    flattens it into the report's headers, its human-readable text, its
//!    machine-readable parts (`message/delivery-status`,
//!    `message/feedback-report`) and the enclosed original's headers, with
//!    caps on depth, part count and text size.
//! 3. **Detectors**, in order, the first that recognises the message wins:
//!    ARF complaints (`arf`, including the non-RFC variants of Hotmail,
//!    Yahoo, AOL and Apple); RFC 3464 DSNs (`dsn`, enriched from the text
//!    when `Diagnostic-Code` is missing); vendor formats (`vendors`: SES
//!    JSON notifications, list managers refusing a post: fml, Majordomo,
//!    Mailman, ezmlm, LISTSERV); strong
//!    auto-reply evidence (`autoreply`); then plain-text heuristics
//!    (`text`): cut the returned message off, take the addresses left that
//!    are not the report's own or in a sender/contact context (or those of
//!    `X-Failed-Recipients`), and the text around each as its diagnostic.
//!    This one generic scanner, not one parser per MTA, covers qmail, Exim,
//!    Sendmail, Postfix, Courier, Exchange, Domino and the webmail
//!    providers, because they all share that shape; a bounce of a bounce is
//!    read from the message it returns. Weak auto-reply evidence labels
//!    what is left.
//! 4. **Classification** (`classify`, `phrases`, `providers`): the reason
//!    comes from a vendor's verdict, else a provider's published error code
//!    (Cox `AUP#…`, Orange `OFR_…`), else an RFC 3463 code whose subject
//!    and detail name one cause (`5.2.2`, `5.7.26`, ...), else per-reason
//!    phrase tables over the remote MTA's reply, then over the report's
//!    prose (the way Sisimai's reason detectors work), interleaved with
//!    the other codes specific enough to decide and with the SMTP stage
//!    the text names (an "unknown user" answer to RCPT is a bad address; to
//!    DATA it is a content filter), else the status class, else the action.
//!    The status is taken from the text when the DSN's is vague, and
//!    inferred from the reason when there is none. The phrase tables are
//!    data (`phrases/tables/<reason>.tsv`, each phrase with its source),
//!    matched in one Aho–Corasick pass; every phrase and provider code is a
//!    named rule ([`rules`]), so [`parse_with`] can switch rules off and
//!    record which matched — how `bounce-score` cross-validates by source
//!    family ([`crossval`]) without a second code path.
//! 5. **Hard or soft** ([`Reason::bounce_type`]): hard only when the address
//!    itself is bad (`user_unknown`, `host_unknown`, `has_moved`, permanent
//!    `not_accept`); a full mailbox or a block is soft whatever its class,
//!    because suppressing on it would lose good addresses.
//!
//! Nothing here does I/O, allocates without a cap, or panics on any input
//! (property tests and a fuzz target check that). The scoring and bench
//! binaries in `src/bin` are the only I/O.

mod arf;
mod autoreply;
mod classify;
pub mod crossval;
mod dsn;
mod finding;
mod headers;
mod mime;
mod model;
pub mod normalise;
mod original;
mod phrases;
mod providers;
mod reason;
pub mod rules;
pub mod scoring;
mod status;
mod text;
mod vendors;

use std::collections::HashSet;

pub use headers::is_valid_address;
pub use model::{
    Action, AutoReply, Bounce, BounceType, BouncedRecipient, Complaint, DeliverySuccess, Format,
    OriginalMessage, Reason, Report, Status,
};

use crate::autoreply::Evidence;
use crate::finding::Finding;
use crate::headers::find_addresses;
use crate::mime::Walked;
use crate::rules::Rules;

/// Parses and classifies one inbound message. Never panics; work and memory
/// are bounded by [`normalise::MAX_INPUT`] and the walk's caps.
pub fn parse(raw: &[u8]) -> Report {
    parse_with(raw, &mut Rules::all())
}

/// [`parse`] with only the classification rules `rules` allows, recording
/// the rules that matched if `rules` asks for it (see [`rules`]).
pub fn parse_with(raw: &[u8], rules: &mut Rules) -> Report {
    parse_at(raw, 0, rules)
}

fn parse_at(raw: &[u8], depth: usize, rules: &mut Rules) -> Report {
    let norm = normalise::normalise(raw);
    let w = mime::walk(&norm);
    let all_text = w.text();
    let (error_text, quoted) = text::split_original(&all_text);
    let original = match &w.original {
        Some(h) => original::from_headers(h, w.original_subject.clone()),
        None => quoted
            .as_ref()
            .map(|(h, _)| original::from_headers(h, None))
            .unwrap_or_default(),
    };

    if let Some(c) = arf::detect(&w, &original) {
        return Report::Complaint(c);
    }
    if let Some(r) = from_dsn(&w, error_text, &original, rules) {
        return r;
    }
    if let Some(r) = vendors::json(&all_text, &original) {
        return match r {
            vendors::JsonReport::Bounce(f, mta) => bounce(f, mta, Format::Json, original, rules),
            vendors::JsonReport::Complaint(c) => Report::Complaint(*c),
            vendors::JsonReport::Delivery(recipients) => Report::DeliverySuccess(DeliverySuccess {
                recipients,
                original,
            }),
        };
    }
    if let Some(findings) = vendors::list_rejection(&w.top, error_text, &exclusions(&w), &original)
    {
        return bounce(findings, None, Format::Text, original, rules);
    }
    let evidence = autoreply::evidence(&w.top);
    if evidence == Evidence::Strong {
        return Report::AutoReply(autoreply::report(&w.top, None));
    }
    if text::looks_like_bounce(&w.top, error_text) {
        let exclude = exclusions(&w);
        let failed: Vec<String> = w
            .top
            .all("x-failed-recipients")
            .flat_map(|v| find_addresses(v).into_iter().map(|a| a.2))
            .take(500)
            .collect();
        let mut findings = text::scan(error_text, &exclude, &failed);
        if findings.is_empty() {
            // No address in the text (or only the sender's): the report is
            // about the original's recipients.
            let to: Vec<String> = original
                .to
                .iter()
                .filter(|a| !exclude.contains(*a))
                .cloned()
                .collect();
            findings = text::scan(error_text, &exclude, &to);
        }
        vendors::hint_text(&w.top, error_text, &mut findings);
        text::set_action(&w.top, error_text, &mut findings);
        if !findings.is_empty() {
            return bounce(findings, None, Format::Text, original, rules);
        }
        // A bounce of a bounce: the report is in the returned message.
        if depth == 0 {
            let rest = all_text[error_text.len()..].trim_start_matches(|c: char| c != '\n');
            if let r @ Report::Bounce(_) = parse_at(rest.trim_start().as_bytes(), depth + 1, rules)
            {
                return r;
            }
        }
    }
    if evidence == Evidence::Weak {
        return Report::AutoReply(autoreply::report(&w.top, None));
    }
    Report::Unrecognised
}

fn from_dsn(
    w: &Walked,
    error_text: &str,
    original: &OriginalMessage,
    rules: &mut Rules,
) -> Option<Report> {
    // Every delivery-status part counts (some MTAs send one per attempt).
    let mut parsed: Option<dsn::Dsn> = None;
    for body in &w.delivery_status {
        let d = dsn::parse_fields(body);
        match &mut parsed {
            Some(p) => {
                p.recipients.extend(d.recipients);
                p.recipients.truncate(1000);
            }
            None if !d.recipients.is_empty() => parsed = Some(d),
            None => {}
        }
    }
    if parsed.is_none() && dsn::has_inline_fields(error_text) {
        parsed = Some(dsn::parse_fields(error_text)).filter(|d| !d.recipients.is_empty());
    }
    let mut d = match parsed {
        Some(d) => d,
        // A delivery report without recipient groups: the original's
        // recipients, with whatever the text says.
        None if w.report_type.as_deref() == Some("delivery-status") && !original.to.is_empty() => {
            let exclude = exclusions(w);
            let to: Vec<String> = original
                .to
                .iter()
                .filter(|a| !exclude.contains(*a))
                .cloned()
                .collect();
            let mut findings = text::scan(error_text, &exclude, &to);
            if findings.is_empty() {
                return None;
            }
            text::set_action(&w.top, error_text, &mut findings);
            return Some(bounce(findings, None, Format::Dsn, original.clone(), rules));
        }
        None => return None,
    };
    let (ok, failed): (Vec<Finding>, Vec<Finding>) = std::mem::take(&mut d.recipients)
        .into_iter()
        .partition(|f| f.action.is_some_and(|a| a.is_success()));
    if failed.is_empty() {
        return Some(Report::DeliverySuccess(DeliverySuccess {
            recipients: ok.into_iter().map(|f| f.email).collect(),
            original: original.clone(),
        }));
    }
    d.recipients = failed;
    dsn::enrich(&mut d, error_text);
    Some(bounce(
        d.recipients,
        d.reporting_mta,
        Format::Dsn,
        original.clone(),
        rules,
    ))
}

fn bounce(
    findings: Vec<Finding>,
    reporting_mta: Option<String>,
    format: Format,
    original: OriginalMessage,
    rules: &mut Rules,
) -> Report {
    Report::Bounce(Bounce {
        recipients: findings
            .into_iter()
            .map(|f| classify::classify(f, rules))
            .collect(),
        reporting_mta,
        format,
        original,
    })
}

/// Addresses that are never the failed recipient of a plain-text bounce:
/// the report's own sender and recipients (our VERP address). The
/// original's sender is not among them: people write to themselves, and
/// the text scanner already skips addresses in a sender context.
fn exclusions(w: &Walked) -> HashSet<String> {
    let mut set = HashSet::new();
    for name in [
        "from",
        "to",
        "cc",
        "reply-to",
        "sender",
        "return-path",
        "errors-to",
    ] {
        for v in w.top.all(name) {
            set.extend(find_addresses(v).into_iter().map(|a| a.2));
        }
    }
    set
}

/// Development aid: the intermediate stages of [`parse`], as text.
#[doc(hidden)]
pub fn debug_stages(raw: &[u8]) -> String {
    let norm = normalise::normalise(raw);
    let w = mime::walk(&norm);
    let all_text = w.text();
    let (error_text, quoted) = text::split_original(&all_text);
    format!(
        "top: {:?}\nreport_type: {:?}\ntexts: {}\ndsn: {:?}\nfeedback: {:?}\noriginal: {:?}\nerror_text:\n{}\nquoted: {:?}\nlooks_like_bounce: {}\n",
        w.top,
        w.report_type,
        w.texts.len(),
        w.delivery_status,
        w.feedback,
        w.original,
        error_text,
        quoted,
        text::looks_like_bounce(&w.top, error_text)
    )
}
