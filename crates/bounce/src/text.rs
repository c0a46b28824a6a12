//! Detector 4: plain-text bounces, and text helpers shared by the others.
//!
//! Most MTAs that do not send RFC 3464 DSNs (qmail, Exim, old Sendmail,
//! Postfix without DSN, Courier, Exchange 2003, Domino, webmail providers)
//! still follow one shape: some prose, then each failed address on its own
//! line (`<a@b>:`, `  a@b`, `a@b [reason]`, `a@b: reason`) with the
//! remote server's answer next to it, then a copy of the original message
//! after a separator. So instead of one parser per MTA this module:
//!
//! 1. cuts the text at the start of the returned message (a separator line,
//!    or the first block that reads as the original's headers),
//! 2. takes every address left that is not the sender, the report's own
//!    addresses or a mailer daemon, in order of appearance,
//! 3. gives each the text block around it as its diagnostic.

use std::collections::HashSet;

use crate::finding::Finding;
use crate::headers::{field_name, find_addresses, Headers};
use crate::model::Action;
use crate::status::Status;

/// Lines that start the returned original message (lowercased, `contains`).
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message, including all the headers",
    "this is a copy of the headers that were received",
    "original message follows",
    "unsent message follows",
    "returned message follows",
    "original message header follows",
    "message header follows",
    "header of the original message",
    "headers of the original message",
    "original message headers",
    "---- original message ---",
    "-----original message-----",
    "--- original message ---",
    "------ original message ------",
    "original message:",
    "returned mail follows",
    "the message follows",
    "copy of the message follows",
    "following is a copy of the message",
    "your message reads",
    "original text follows",
    "content-type: message/rfc822",
    "content-type: text/rfc822-headers",
    "--- message non-delivered ---",
    "undelivered message headers",
    "original message details",
    "original message as received",
];

/// Original-message header names that identify a quoted header block.
const ORIGINAL_FIELDS: &[&str] = &[
    "received",
    "from",
    "to",
    "subject",
    "message-id",
    "date",
    "return-path",
    "mime-version",
    "content-type",
    "x-mailer",
    "dkim-signature",
    "sender",
    "reply-to",
    "cc",
];

/// The error part of a plain-text bounce, and the original's headers when
/// they are quoted after it.
pub fn split_original(text: &str) -> (&str, Option<(Headers, String)>) {
    let mut offset = 0;
    let mut cut: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let l = line.trim().to_ascii_lowercase();
        if offset > 0 && ORIGINAL_MARKERS.iter().any(|m| l.contains(m)) {
            let after = offset + line.len();
            return (&text[..offset], headers_after(&text[after..]));
        }
        if cut.is_none() && offset > 0 && quoted_header_block(&text[offset..], true) {
            cut = Some(offset);
            break;
        }
        offset += line.len();
    }
    match cut {
        Some(c) => (&text[..c], headers_after(&text[c..])),
        None => (text, None),
    }
}

/// True when `text` starts with a header block of an email (not DSN
/// fields). `strict` (no separator line announced it) also asks for a
/// field that only real headers have.
fn quoted_header_block(text: &str, strict: bool) -> bool {
    let first = text.lines().next().unwrap_or("");
    let Some((name, _)) = field_name(first) else {
        return false;
    };
    if !ORIGINAL_FIELDS.contains(&name.to_ascii_lowercase().as_str()) {
        return false;
    }
    let (h, _) = Headers::parse(text);
    let known = h
        .iter()
        .filter(|(n, _)| ORIGINAL_FIELDS.contains(&n.to_ascii_lowercase().as_str()))
        .count();
    let strong = h.iter().any(|(n, _)| {
        matches!(
            n.to_ascii_lowercase().as_str(),
            "received"
                | "message-id"
                | "return-path"
                | "mime-version"
                | "content-type"
                | "dkim-signature"
                | "x-mailer"
        )
    });
    if strict {
        known >= 3 && strong
    } else {
        known >= 2
    }
}

fn headers_after(text: &str) -> Option<(Headers, String)> {
    // Skip blank lines and decoration before the header block.
    let mut offset = 0;
    for line in text.split_inclusive('\n').take(8) {
        let rest = &text[offset..];
        if quoted_header_block(rest, false) {
            let (h, end) = Headers::parse(rest);
            return Some((h, rest[..end].to_string()));
        }
        offset += line.len();
    }
    None
}

/// Addresses preceded by these words on the same line are senders or
/// aliases, not failed recipients.
const NOT_RECIPIENT_BEFORE: &[&str] = &[
    "mail from:",
    "mail from: ",
    "mail from:<",
    "mail from: <",
    "envelope-from <",
    "envelope-from",
    "generated from ",
    "expanded from: <",
    "expanded from <",
    "expanded from: ",
    "return-path: <",
    "return-path:",
    "sender: ",
    "from: ",
    "from:",
    "from <",
    "message-id: <",
    "message-id:<",
    "in-reply-to: <",
    "references: <",
    "reply-to: ",
    "reported by ",
    "contact ",
    "contact: ",
    "contact <",
    "mailto:",
    "send an e-mail to ",
    "send email to ",
    "postmaster ",
];

/// Local parts that are never the failed recipient.
fn is_system_address(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("");
    matches!(local, "mailer-daemon" | "mail-daemon" | "mailerdaemon")
        || local.starts_with("mailer-daemon")
}

/// Candidate failed recipients in an error text, in order, deduplicated.
pub fn candidates(error: &str, exclude: &HashSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut aliases: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for (s, _, addr) in find_addresses(error) {
        if exclude.contains(&addr)
            || is_system_address(&addr)
            || out.contains(&addr)
            || skipped.contains(&addr)
        {
            continue;
        }
        let line_start = error[..s].rfind('\n').map_or(0, |p| p + 1);
        let before = error[line_start..s].to_ascii_lowercase();
        let before = before.trim_end_matches(['<', '"', '\'', ' ']);
        if before.ends_with("generated from") {
            aliases.push(addr);
            continue;
        }
        // "  To: x" / "* Cc: x" quoted from the original ("Your message
        // To: ... Subject: ... did not reach the following recipient(s)").
        let quoted = error[line_start..].starts_with([' ', '\t']);
        let field = before.trim_start().trim_start_matches(['*', '-', ' ']);
        if quoted
            && ["to:", "cc:", "bcc:", "from:", "sender:"]
                .iter()
                .any(|f| field.starts_with(f))
        {
            skipped.push(addr);
            continue;
        }
        if NOT_RECIPIENT_BEFORE
            .iter()
            .any(|w| before.ends_with(w.trim_end_matches(['<', ' '])))
        {
            // A sender or contact address stays one wherever it recurs.
            skipped.push(addr);
            continue;
        }
        // Message-ID-looking tokens: "<digits.digits@host>".
        let local = addr.split('@').next().unwrap_or("");
        if local.len() > 24
            && local.bytes().filter(|c| c.is_ascii_digit()).count() * 2 > local.len()
        {
            continue;
        }
        out.push(addr);
        if out.len() >= 200 {
            break;
        }
    }
    // Only an alias was named ("an undisclosed address (generated from x)").
    if out.is_empty() {
        aliases.dedup();
        return aliases;
    }
    out
}

/// The text around each mention of `addr`: the rest of its line, and the
/// lines that follow until a blank line (or the next paragraph when the
/// address stands alone on its line). Up to four mentions, joined.
/// A line that names another of `others` ends the block.
pub fn block_for(text: &str, addr: &str, others: &[String]) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut used = vec![false; lines.len()];
    let mut mentions = 0;
    for (i, line) in lines.iter().enumerate() {
        if mentions >= 4 {
            break;
        }
        if !line.to_ascii_lowercase().contains(addr) {
            continue;
        }
        mentions += 1;
        let rest = strip_address(line, addr);
        let mut block: Vec<&str> = Vec::new();
        if has_words(&rest) && !used[i] {
            block.push(line.trim());
            used[i] = true;
        }
        let mut j = i + 1;
        // An address alone on its line: its text may follow a blank line.
        if block.is_empty() {
            while j < lines.len() && lines[j].trim().is_empty() && j < i + 3 {
                j += 1;
            }
        }
        // A transcript line "550 <a@b>... reason" is complete in itself;
        // only indented continuation lines belong to it.
        let reply_line = line.trim_start().as_bytes().get(..4).is_some_and(|p| {
            p[..3].iter().all(u8::is_ascii_digit) && (p[3] == b' ' || p[3] == b'-')
        }) && !block.is_empty();
        while j < lines.len() && !lines[j].trim().is_empty() && block.len() < 12 {
            if reply_line && !lines[j].starts_with([' ', '\t']) {
                break;
            }
            let lj = lines[j].to_ascii_lowercase();
            if others.iter().any(|o| o != addr && lj.contains(o.as_str())) && !lj.contains(addr) {
                break;
            }
            if !used[j] {
                block.push(lines[j].trim());
                used[j] = true;
            }
            j += 1;
        }
        if !block.is_empty() {
            parts.push(block.join(" "));
        }
    }
    let s = parts.join(" ");
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(2000).collect())
}

fn strip_address(line: &str, addr: &str) -> String {
    let l = line.to_ascii_lowercase();
    l.replace(addr, " ")
}

/// At least two words. Chinese and Japanese put no spaces between words,
/// so there every ideograph or kana counts as one.
fn has_words(s: &str) -> bool {
    s.split(|c: char| !c.is_alphabetic())
        .map(|w| {
            if w.chars().any(|c| c >= '\u{3000}') {
                w.chars().count()
            } else {
                usize::from(w.len() >= 2)
            }
        })
        .sum::<usize>()
        >= 2
}

/// The error text squeezed to one line, capped (the diagnostic of last
/// resort).
pub fn summary(text: &str) -> String {
    let mut out = String::new();
    for w in text.split_whitespace() {
        if out.len() > 3000 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Words in the Subject or From of a report that say "delivery problem".
const BOUNCE_SUBJECT: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery",
    "failure",
    "failed",
    "returned",
    "return mail",
    "bounce",
    "not delivered",
    "non remis",
    "nondeliverable",
    "non-deliverable",
    "rejected",
    "error",
    "warning",
    "could not",
    "unable to deliver",
    "mail system",
    "problem",
    "notification",
    "unzustellbar",
    "nicht zustellbar",
    "no entregado",
    "mensaje no entregado",
    "non recapitabile",
    "returned to sender",
    "aviso",
    "status",
    "недоставленное",
    "не доставлено",
];

const BOUNCE_FROM: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "post_master",
    "mail delivery",
    "mail administrator",
    "mailer",
    "mail-daemon",
    "mail system",
    "notification",
    "daemon",
    "administrator",
    "bounce",
];

const BOUNCE_BODY: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't delivered",
    "undeliverable",
    "delivery failed",
    "delivery has failed",
    "delivery to the following recipient",
    "unable to deliver",
    "permanent error",
    "permanent fatal error",
    "failed permanently",
    "following address(es) failed",
    "following addresses had",
    "following recipients",
    "delivery status notification",
    "rejected your message",
    "message was rejected",
    "could not deliver",
    "can't deliver",
    "cannot be delivered",
    "returned mail",
    "user unknown",
    "mailbox unavailable",
    "remote host said",
    "smtp error",
    "failed to deliver",
    "delivery attempt",
    "not be delivered",
    "delivery problem",
    "did not reach",
    "mail delivery",
    "no such user",
    "wasn't able to deliver your message",
    "sorry it didn't work out",
];

/// Sentences only a bounce writes (qmail-send.c's bounce and double
/// bounce): enough even in a message whose subject looks like a reply.
const BOUNCE_ONLY: &[&str] = &["this is the qmail-send program", "but the bounce bounced"];

/// Does this message present itself as a delivery report? A daemon sender
/// is enough; otherwise the body must use a bounce's words (and, for a
/// reply or forward, the subject too), so that a customer writing "Re:
/// your order" is not read as a bounce of the addresses in their signature.
pub fn looks_like_bounce(top: &Headers, error_text: &str) -> bool {
    let subject = top.get("subject").unwrap_or("").to_lowercase();
    let from = top.get("from").unwrap_or("").to_lowercase();
    if BOUNCE_FROM.iter().any(|w| from.contains(w)) {
        return true;
    }
    let body = error_text.to_lowercase();
    if BOUNCE_ONLY.iter().any(|w| body.contains(w)) {
        return true;
    }
    let body_says = BOUNCE_BODY.iter().any(|w| body.contains(w));
    let subject_says = BOUNCE_SUBJECT.iter().any(|w| subject.contains(w));
    let s = subject.trim_start();
    let reply = ["re:", "re :", "fw:", "fwd:", "aw:", "sv:", "tr:", "wg:"]
        .iter()
        .any(|p| s.starts_with(p));
    if reply {
        // Some gateways answer "RE: <subject> : non remis"; a person's
        // reply needs both the subject and the body to say so.
        return body_says && subject_says;
    }
    body_says || subject_says && Status::find_in(&body).is_some_and(|s| s.class() != 2)
}

/// `failed` are the addresses of an `X-Failed-Recipients` header, which
/// (when present) name the recipients authoritatively.
pub fn scan(error: &str, exclude: &HashSet<String>, failed: &[String]) -> Vec<Finding> {
    let list = if failed.is_empty() {
        candidates(error, exclude)
    } else {
        failed.to_vec()
    };
    list.iter()
        .map(|addr| {
            let mut f = Finding::new(addr.clone());
            match block_for(error, &f.email, &list) {
                Some(b) if has_words(&strip_address(&b, &f.email)) => f.diagnostic = b,
                _ => {}
            }
            f.diagnostic_from_text = true;
            f.fallback_text = Some(summary(error));
            f
        })
        .collect()
}

/// Phrases of a delay warning (the MTA keeps trying).
const DELAY: &[&str] = &[
    "delayed",
    "has not yet been delivered",
    "not yet been delivered",
    "warning message only",
    "this is just a warning",
    "still trying",
    "no action is required on your part",
];

/// Phrases that promise more attempts: a delay even if the text also says
/// "could not be delivered".
const RETRYING: &[&str] = &[
    "delivery attempts will continue",
    "will continue to attempt",
    "will continue trying",
    "will keep trying",
    "will be retried",
    "will retry",
    "continue to try",
    "has been postponed",
    "advisory-only",
];

/// Phrases that rule out more attempts.
const NO_RETRY: &[&str] = &[
    "not going to try again",
    "giving up",
    "gave up",
    "permanent error",
    "permanent fatal",
    "failed permanently",
    "will not be retried",
];

/// Phrases of a failure (weaker than [`RETRYING`]).
const FAILED: &[&str] = &[
    "could not be delivered",
    "was not delivered",
    "will not be delivered",
    "unable to deliver",
    "delivery has failed",
    "delivery failed",
];

/// Sets the action of plain-text findings: a delay warning (subject or
/// text) gives `delayed`, anything else `failed`.
pub fn set_action(top: &Headers, error: &str, findings: &mut [Finding]) {
    let subject = top.get("subject").unwrap_or("").to_lowercase();
    let body = error.to_lowercase();
    let any = |list: &[&str]| list.iter().any(|p| body.contains(p) || subject.contains(p));
    let no_retry = NO_RETRY.iter().any(|p| body.contains(p));
    let delayed = !no_retry
        && (RETRYING.iter().any(|p| body.contains(p))
            || (subject.contains("delay") || any(DELAY)) && !any(FAILED));
    for f in findings.iter_mut() {
        if f.action.is_none() {
            f.action = Some(if delayed {
                Action::Delayed
            } else {
                Action::Failed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmail_shape() {
        let t = "Hi. This is the qmail-send program.\n\n<a@x.example>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 unknown user\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <s@y.example>\nFrom: s@y.example\nTo: a@x.example\nSubject: hi\n\nbody\n";
        let (err, orig) = split_original(t);
        assert!(orig.is_some());
        let f = scan(err, &HashSet::new(), &[]);
        assert_eq!(f.len(), 1);
        assert!(f[0].diagnostic.contains("unknown user"));
    }
}
