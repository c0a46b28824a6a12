//! Detector 2: RFC 3464 delivery status notifications.
//!
//! A `message/delivery-status` body is one group of per-message fields
//! (`Reporting-MTA`, `Arrival-Date`, ...) and one group per recipient
//! (`Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`,
//! `Remote-MTA`, ...), separated by blank lines. Real MTAs forget the blank
//! lines, repeat fields, put the fields in the text part instead of a
//! `message/delivery-status` part, or leave `Diagnostic-Code` out and write
//! the reason only in the human-readable part; all of that is tolerated
//! here, and a missing diagnostic is taken from the text when the text
//! names the recipient.

use crate::finding::Finding;
use crate::headers::{field_name, first_address};
use crate::model::Action;
use crate::status::Status;
use crate::text;

/// Cap on per-recipient groups read from one DSN.
const MAX_RECIPIENTS: usize = 500;

/// The parsed machine-readable part.
#[derive(Debug, Default)]
pub struct Dsn {
    /// `Reporting-MTA`, without its type.
    pub reporting_mta: Option<String>,
    /// One entry per recipient group that names an address.
    pub recipients: Vec<Finding>,
}

const PER_RECIPIENT: &[&str] = &[
    "final-recipient",
    "original-recipient",
    "action",
    "status",
    "diagnostic-code",
    "remote-mta",
    "last-attempt-date",
    "will-retry-until",
    "x-actual-recipient",
    "final-log-id",
];

/// Parses the fields of a DSN body (or of text that carries DSN fields).
pub fn parse_fields(body: &str) -> Dsn {
    let mut dsn = Dsn::default();
    let mut cur: Vec<(String, String)> = Vec::new();
    let mut groups: Vec<Vec<(String, String)>> = Vec::new();
    let mut last_was_field = false;
    for line in body.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                groups.push(std::mem::take(&mut cur));
            }
            last_was_field = false;
            continue;
        }
        if line.starts_with([' ', '\t']) && last_was_field {
            if let Some(last) = cur.last_mut() {
                if last.1.len() < 4096 {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            }
            continue;
        }
        let Some((name, value)) = field_name(line) else {
            last_was_field = false;
            continue;
        };
        let name = name.to_ascii_lowercase();
        // A new recipient begins where a recipient field repeats.
        if (name == "final-recipient" || name == "original-recipient")
            && cur.iter().any(|(n, _)| n == &name)
        {
            groups.push(std::mem::take(&mut cur));
        }
        cur.push((name, value.trim().to_string()));
        last_was_field = true;
        if groups.len() > MAX_RECIPIENTS * 2 {
            break;
        }
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    for g in groups {
        let get = |n: &str| g.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        if dsn.reporting_mta.is_none() {
            if let Some(v) = get("reporting-mta") {
                dsn.reporting_mta = Some(after_type(v).to_ascii_lowercase());
            }
        }
        if !g.iter().any(|(k, _)| PER_RECIPIENT.contains(&k.as_str())) {
            continue;
        }
        // Original-Recipient is the address as we sent it (before alias
        // expansion), the one the caller knows; Final-Recipient otherwise.
        let addr = get("original-recipient")
            .and_then(first_address)
            .or_else(|| get("final-recipient").and_then(first_address))
            .or_else(|| get("x-actual-recipient").and_then(first_address));
        let Some(email) = addr else { continue };
        let mut f = Finding::new(email);
        f.final_recipient = get("final-recipient").and_then(first_address);
        f.action = get("action").and_then(Action::parse);
        f.status = get("status").and_then(|s| {
            Status::parse(s.split_whitespace().next().unwrap_or("")).or_else(|| Status::find_in(s))
        });
        if let Some(d) = get("diagnostic-code") {
            let (ty, text) = match d.split_once(';') {
                Some((t, rest)) if t.len() < 20 && !t.contains(' ') => (t.trim(), rest.trim()),
                _ => ("", d.trim()),
            };
            f.diagnostic_type = Some(ty.to_ascii_lowercase());
            f.diagnostic = text.to_string();
        }
        f.remote_mta = get("remote-mta")
            .map(|v| after_type(v).trim_end_matches('.').to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        dsn.recipients.push(f);
        if dsn.recipients.len() >= MAX_RECIPIENTS {
            break;
        }
    }
    dsn
}

fn after_type(v: &str) -> &str {
    v.split_once(';').map_or(v, |(_, r)| r).trim()
}

/// True when `text` carries DSN recipient fields inline (some MTAs put them
/// in a `text/plain` part).
pub fn has_inline_fields(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    (l.contains("\nfinal-recipient:") || l.starts_with("final-recipient:"))
        && (l.contains("\nstatus:") || l.contains("\naction:"))
}

/// Fills what the DSN left out from the human-readable text: the
/// diagnostic (when empty or only a bare code) and the remote host.
pub fn enrich(dsn: &mut Dsn, error_text: &str) {
    let others: Vec<String> = dsn.recipients.iter().map(|f| f.email.clone()).collect();
    for f in &mut dsn.recipients {
        let bare = f.diagnostic.trim().len() < 12;
        let block = text::block_for(error_text, &f.email, &others);
        f.context = block.clone();
        if bare {
            if let Some(block) = block {
                if block.len() > f.diagnostic.len() {
                    f.diagnostic = block;
                    f.diagnostic_from_text = true;
                }
            }
        }
        if f.diagnostic.trim().is_empty() {
            f.fallback_text = Some(text::summary(error_text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_without_blank_lines() {
        let d = parse_fields(
            "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@x.example\nAction: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822; b@x.example\nAction: delayed\nStatus: 4.4.7\nDiagnostic-Code: smtp; 450 try\n later\n",
        );
        assert_eq!(d.reporting_mta.as_deref(), Some("mx.example"));
        assert_eq!(d.recipients.len(), 2);
        assert_eq!(d.recipients[1].diagnostic, "450 try later");
        assert_eq!(d.recipients[1].action, Some(Action::Delayed));
    }
}
