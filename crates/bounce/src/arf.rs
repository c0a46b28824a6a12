//! Detector 1: feedback-loop complaints.
//!
//! RFC 5965 ARF is a `multipart/report; report-type=feedback-report` with a
//! `message/feedback-report` part of fields and the original message. Real
//! providers bend it: the fields arrive as `text/plain`, `Feedback-Type` is
//! missing or odd, the report type is absent, or there is no report part at
//! all (Microsoft JMRP sends just the original message with an
//! `X-HmXmrOriginalRecipient` header; Apple Mail sends an `X-Apple-Unsubscribe`
//! message). Each variant is recognised by its own marker and mapped onto
//! one [`Complaint`].

use crate::headers::{first_address, looks_like_headers, Headers};
use crate::mime::Walked;
use crate::model::{Complaint, OriginalMessage};

/// Recognises a complaint; `None` when the message is not one.
pub fn detect(w: &Walked, original: &OriginalMessage) -> Option<Complaint> {
    if let Some(fields) = feedback_fields(w) {
        return Some(from_fields(w, &fields, original));
    }
    // Microsoft JMRP: the complained-about message, marked by Hotmail.
    if let Some(orig) = &w.original {
        if let Some(rcpt) = orig.get("x-hmxmroriginalrecipient") {
            let mut c = empty(original);
            c.recipients = first_address(rcpt).into_iter().collect();
            c.reporter = domain_of(w.top.get("from")).or(Some("hotmail.com".into()));
            c.source_ip = orig.get("x-reporter-ip").map(str::to_string);
            return Some(finish(c, original));
        }
    }
    // Apple Mail's one-click unsubscribe is an opt-out report.
    if w.top
        .get("x-apple-unsubscribe")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        let mut c = empty(original);
        c.feedback_type = "opt-out".into();
        c.recipients = w
            .top
            .get("from")
            .and_then(first_address)
            .into_iter()
            .collect();
        c.reporter = domain_of(w.top.get("from"));
        return Some(finish(c, original));
    }
    // Old AOL / provider reports: an abuse subject with the message attached.
    let subject = w.top.get("subject").unwrap_or("").to_ascii_lowercase();
    let from = w.top.get("from").unwrap_or("").to_ascii_lowercase();
    let fbl_sender = [
        "scomp@aol.net",
        "feedback@arf.mail.yahoo.com",
        "staff@hotmail.com",
    ]
    .iter()
    .any(|s| from.contains(s));
    if w.original.is_some()
        && (fbl_sender
            || subject.contains("client tos notification")
            || subject.contains("abuse report"))
    {
        return Some(finish(empty(original), original));
    }
    None
}

/// The feedback fields, wherever they were put.
fn feedback_fields(w: &Walked) -> Option<Headers> {
    if let Some(body) = w.feedback.first() {
        return Some(Headers::parse(body.trim_start()).0);
    }
    let is_report = w.report_type.as_deref() == Some("feedback-report");
    for t in &w.texts {
        // The fields as a text part (or inline in the only text part).
        if let Some(p) = find_line_start(t, "feedback-type:") {
            let block = &t[p..];
            if looks_like_headers(block) {
                return Some(Headers::parse(block).0);
            }
        }
    }
    if w.top.get("feedback-type").is_some() {
        return Some(w.top.clone());
    }
    is_report.then(Headers::default)
}

fn find_line_start(t: &str, needle: &str) -> Option<usize> {
    let lower = t.to_ascii_lowercase();
    if lower.starts_with(needle) {
        return Some(0);
    }
    lower.find(&format!("\n{needle}")).map(|p| p + 1)
}

fn from_fields(w: &Walked, f: &Headers, original: &OriginalMessage) -> Complaint {
    let mut c = empty(original);
    if let Some(t) = f.get("feedback-type") {
        let t = t.trim().to_ascii_lowercase();
        let t = t.split([' ', ';', '(']).next().unwrap_or("").to_string();
        if !t.is_empty() {
            c.feedback_type = t;
        }
    }
    c.reporter = f
        .get("user-agent")
        .or_else(|| {
            f.get("reporting-mta")
                .map(|v| v.split_once(';').map_or(v, |x| x.1).trim())
        })
        .map(str::to_string)
        .or_else(|| domain_of(w.top.get("from")));
    c.recipients = f
        .all("original-rcpt-to")
        .chain(f.all("removal-recipient"))
        .filter_map(first_address)
        .collect();
    c.source_ip = f.get("source-ip").map(|v| v.trim().to_string());
    c.arrival_date = f
        .get("arrival-date")
        .or_else(|| f.get("received-date"))
        .map(str::to_string);
    finish(c, original)
}

fn empty(original: &OriginalMessage) -> Complaint {
    Complaint {
        feedback_type: "abuse".into(),
        reporter: None,
        email: None,
        recipients: Vec::new(),
        source_ip: None,
        arrival_date: None,
        original: original.clone(),
    }
}

/// Falls back to the enclosed message's `To:` and dedups.
fn finish(mut c: Complaint, original: &OriginalMessage) -> Complaint {
    if c.recipients.is_empty() {
        c.recipients = original.to.clone();
    }
    let mut seen = Vec::new();
    c.recipients.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    c.email = c.recipients.first().cloned();
    c
}

fn domain_of(from: Option<&str>) -> Option<String> {
    let a = first_address(from?)?;
    a.split_once('@').map(|(_, d)| d.to_string())
}
