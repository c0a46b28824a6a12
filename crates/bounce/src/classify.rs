//! Stage 4: from raw findings to classified recipients.
//!
//! Evidence is read in this order: the RFC 3463 enhanced status code, then
//! the SMTP reply code, then the remote MTA's reply text (the DSN's
//! `Diagnostic-Code`), then the report's human-readable text. The reason
//! comes from, in order of trust:
//!
//! 1. a vendor detector's own verdict (its structure said so), or a
//!    provider's published error code in the reply;
//! 2. an enhanced status code whose subject and detail name one cause
//!    (`5.2.2` mailbox full, `5.7.26` authentication, `5.7.28` rate);
//! 3. the phrase tables of [`crate::phrases`] interleaved with the other
//!    specific codes ("mailbox full" beats a generic `5.1.1` sent by a
//!    sloppy MTA), and the SMTP stage the text names;
//! 4. the status class/subject alone (`5.7.x` security, `4.4.x` network);
//! 5. the same over the human-readable text, when the reply said nothing;
//! 6. the action (`delayed` is expired), then `on_hold` when there is text
//!    we could not read and `undefined` when there is none.
//!
//! The SMTP reply code decides permanence when there is no status. A
//! missing status is inferred from the text, then from the reason.

use crate::finding::Finding;
use crate::headers::find_addresses;
use crate::model::{Action, BouncedRecipient};
use crate::phrases::{self, Hits, Narrow};
use crate::providers;
use crate::reason::Reason;
use crate::rules::Rules;
use crate::status::Status;

/// Classifies one finding, with the phrase and provider rules `rules` allows.
pub fn classify(f: Finding, rules: &mut Rules) -> BouncedRecipient {
    rules.begin_recipient();
    let text = clean(&f.diagnostic);
    let wide = f.fallback_text.as_deref().map(clean).unwrap_or_default();
    // The code the remote server gave ("550 5.7.1", "550-'5.7.1"), else the
    // first code in the text that differs from the DSN's own.
    let text_status = after_reply_code(&f.diagnostic)
        .or_else(|| Status::find_all(&f.diagnostic).find(|t| Some(*t) != f.status))
        .or_else(|| Status::find_in(&f.diagnostic));
    let status = match (f.status, text_status) {
        // A DSN's vague x.0.0 / x.N.0 gives way to a precise code in its text.
        (Some(s), Some(t))
            if t.class() == s.class()
                && (s.is_generic() && t != s || s.detail() == 0 && t.detail() != 0) =>
        {
            Some(t)
        }
        (Some(s), _) => Some(s),
        (None, t) => t,
    };
    let reply_code = f.reply_code.or_else(|| reply_code_in(&f.diagnostic));
    let command = command_in(&text);
    let command = command.or_else(|| f.context.as_deref().map(clean).and_then(|c| command_in(&c)));
    let mut reason = f
        .hint
        .or_else(|| decide(&text, status, command, rules))
        .or_else(|| decide(&wide, None, command.or_else(|| command_in(&wide)), rules))
        .or_else(|| (f.action == Some(Action::Delayed)).then_some(Reason::Expired))
        .unwrap_or(if text.is_empty() && wide.is_empty() {
            Reason::Undefined
        } else {
            Reason::OnHold
        });
    if f.diagnostic_type.as_deref() == Some("x-unix") && f.hint.is_none() {
        reason = match reason {
            Reason::MailboxFull | Reason::UserUnknown => reason,
            _ => Reason::MailerError,
        };
    }
    let permanent = match (status, f.action, reply_code) {
        (Some(s), _, _) => s.is_permanent(),
        (None, Some(Action::Delayed), _) => false,
        (None, _, Some(c)) => c >= 500,
        _ => true,
    };
    let status = status.unwrap_or_else(|| reason.default_status(permanent));
    let action = f.action.unwrap_or(if status.class() == 4 {
        Action::Delayed
    } else {
        Action::Failed
    });
    BouncedRecipient {
        bounce_type: reason.bounce_type(&status),
        email: f.email,
        status,
        reason,
        diagnostic: f.diagnostic.trim().chars().take(2000).collect(),
        remote_mta: f.remote_mta,
        action,
        smtp_reply_code: reply_code,
    }
}

/// A status code written right after an SMTP reply code.
fn after_reply_code(text: &str) -> Option<Status> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(4)).find_map(|i| {
        let code = &b[i..i + 3];
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.';
        if !(starts && matches!(code[0], b'4' | b'5') && code[1..].iter().all(u8::is_ascii_digit)) {
            return None;
        }
        let after = text.get(i + 3..)?;
        let rest = after.trim_start_matches([' ', '-', '\'', '"', '#']);
        let skipped = after.len() - rest.len();
        if !(1..=3).contains(&skipped) {
            return None;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        Status::parse(rest[..end].trim_end_matches('.')).filter(|s| s.class() == code[0] - b'0')
    })
}

/// The SMTP stage a failure happened at, when the text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Connect,
    Helo,
    MailFrom,
    RcptTo,
    Data,
}

fn command_in(text: &str) -> Option<Command> {
    const TABLE: &[(&str, Command)] = &[
        ("end of data", Command::Data),
        ("after data", Command::Data),
        ("in reply to data", Command::Data),
        ("in reply to end of data", Command::Data),
        (">>> data", Command::Data),
        ("(data)", Command::Data),
        ("smtp command data", Command::Data),
        ("rcpt to", Command::RcptTo),
        ("after rcpt", Command::RcptTo),
        ("rcpt command", Command::RcptTo),
        ("[rcpt_to]", Command::RcptTo),
        ("rcpt:", Command::RcptTo),
        ("smtp:rcpt", Command::RcptTo),
        ("recipient address rejected", Command::RcptTo),
        // "550 <a@b>: User unknown": the server quoting the RCPT argument.
        ("0 <<addr>>: ", Command::RcptTo),
        ("0: <<addr>>: ", Command::RcptTo),
        ("rcpt_to", Command::RcptTo),
        ("does not like recipient", Command::RcptTo),
        ("mail from", Command::MailFrom),
        ("after mail", Command::MailFrom),
        ("in reply to helo", Command::Helo),
        ("in reply to ehlo", Command::Helo),
        ("after helo", Command::Helo),
        ("after ehlo", Command::Helo),
        ("after initial connection", Command::Connect),
        ("greeting", Command::Connect),
    ];
    TABLE
        .iter()
        .find(|(p, _)| text.contains(p))
        .map(|(_, c)| *c)
}

/// Decides the reason from the cleaned diagnostic, the status and the
/// SMTP command, in the stages described in the module doc.
fn decide(
    text: &str,
    status: Option<Status>,
    command: Option<Command>,
    rules: &mut Rules,
) -> Option<Reason> {
    if let Some(r) = providers::reason(text, rules) {
        return Some(r);
    }
    let code = status.and_then(status_reason);
    // The phrases are matched (and recorded) even when the code decides, so
    // a record says which phrases occur with which reason.
    let hits = Hits::find(text, rules);
    // An RFC 3463 code that names one cause decides before any words.
    if let Some(r) = status.and_then(decisive) {
        return Some(r);
    }
    let has = |r: Reason| hits.has(r);
    for &r in phrases::FIRST {
        let hit = match r {
            // Only trusted with the code, or at RCPT: an "unknown user"
            // answer to DATA is a content filter speaking.
            Reason::UserUnknown => {
                (code == Some(Reason::UserUnknown)
                    && !phrases::CONTRADICT_USER.iter().any(|&c| has(c)))
                    || command == Some(Command::RcptTo) && has(Reason::UserUnknown)
                    || hits.has_narrow(Narrow::UserUnknownStrong)
            }
            Reason::Filtered => {
                let before_data = matches!(
                    command,
                    Some(Command::Connect | Command::Helo | Command::MailFrom | Command::RcptTo)
                );
                (code == Some(Reason::Filtered) || !before_data)
                    && (has(Reason::Filtered) || has(Reason::UserUnknown))
            }
            Reason::EmailTooLarge => has(r) && code != Some(Reason::ExceedLimit) || code == Some(r),
            // Temporary DNS trouble is a network error, not a bad domain.
            Reason::HostUnknown => {
                (has(r) || code == Some(r) && specific(r) || names_missing_host(text))
                    && status.is_none_or(|s| s.class() != 4)
                    && !text.contains("not found, try again")
            }
            Reason::Suspended => {
                has(r)
                    || code == Some(r)
                        && !(command == Some(Command::RcptTo) && has(Reason::UserUnknown))
            }
            // "spam" inside a blocklist's name is a block, not a verdict.
            Reason::SpamDetected if text.contains("spamhaus") || text.contains("spamcop") => {
                let rest = text.replace("spamhaus", "").replace("spamcop", "");
                Hits::find(&rest, rules).has(r)
            }
            Reason::PolicyViolation => hits.has_narrow(Narrow::PolicyFirst),
            _ => has(r) || code == Some(r) && specific(r),
        };
        if hit {
            return Some(adjust(r, command));
        }
    }
    match command {
        Some(Command::MailFrom) => return Some(Reason::Rejected),
        Some(Command::Helo | Command::Connect) => return Some(Reason::Blocked),
        _ => {}
    }
    if let Some(c) = code.filter(|c| !weak(*c)) {
        return Some(c);
    }
    // x.4.7 names the outcome itself.
    if status.is_some_and(|s| s.subject() == 4 && s.detail() == 7) {
        return Some(Reason::Expired);
    }
    if let Some(r) = phrases::SECOND.iter().copied().find(|&r| has(r)) {
        return Some(r);
    }
    code
}

/// "mx.example.org does not exist": a host name, not an address, missing.
fn names_missing_host(text: &str) -> bool {
    text.match_indices(" does not exist").any(|(i, _)| {
        let word = text[..i].rsplit(' ').next().unwrap_or("");
        word.contains('.') && !word.contains('<') && !word.contains('@') && word.len() > 3
    })
}

/// The enhanced status codes (RFC 3463, RFC 7372, RFC 8601 and the IANA
/// registry) whose subject and detail name one cause, so no phrase can say
/// better. Not 5.1.10: RFC 7505 made it "null MX", but Microsoft 365 sends
/// it for an unknown recipient.
fn decisive(s: Status) -> Option<Reason> {
    let permanent = s.class() == 5;
    Some(match (s.subject(), s.detail()) {
        (1, 2) if permanent => Reason::HostUnknown,
        (1, 6) => Reason::HasMoved,
        (2, 2) => Reason::MailboxFull,
        (3, 4) => Reason::EmailTooLarge,
        (7, 23 | 24 | 26 | 27) => Reason::AuthFailure,
        (7, 25) => Reason::RequirePtr,
        (7, 28) => Reason::RateLimited,
        _ => return None,
    })
}

/// Reasons the code alone may decide in the first stage.
fn specific(r: Reason) -> bool {
    !weak(r) && r != Reason::Filtered
}

/// Codes too vague to beat a phrase.
fn weak(r: Reason) -> bool {
    matches!(
        r,
        Reason::Undefined
            | Reason::OnHold
            | Reason::SystemError
            | Reason::SecurityError
            | Reason::Expired
            | Reason::NetworkError
            | Reason::HostUnknown
            | Reason::UserUnknown
    )
}

/// Context adjustments.
fn adjust(r: Reason, command: Option<Command>) -> Reason {
    match (r, command) {
        (Reason::UserUnknown | Reason::HostUnknown, Some(Command::MailFrom)) => Reason::Rejected,
        _ => r,
    }
}

/// RFC 3463 code to reason.
fn status_reason(s: Status) -> Option<Reason> {
    let temp = s.class() == 4;
    // Temporary x.N.0 codes say only "something, later".
    if temp && s.detail() == 0 {
        return None;
    }
    Some(match (s.subject(), s.detail()) {
        (1, 0 | 1 | 3) => Reason::UserUnknown,
        (1, 2) => Reason::HostUnknown,
        (1, 4) => Reason::Filtered,
        (1, 6) => Reason::HasMoved,
        (1, 7 | 8) => Reason::Rejected,
        (1, 9) => Reason::SystemError,
        (2, 1) => Reason::Suspended,
        (2, 0 | 4) => Reason::Filtered,
        (2, 2) => Reason::MailboxFull,
        (2, 3) => Reason::ExceedLimit,
        (3, 1) => Reason::SystemFull,
        (3, 2) => Reason::NotAccept,
        (3, 4) => Reason::EmailTooLarge,
        (3, _) => Reason::SystemError,
        (4, 1) if temp => Reason::Expired,
        (4, 4) if !temp => Reason::HostUnknown,
        (4, 3) => Reason::SystemError,
        (4, 5) => Reason::SystemFull,
        (4, 7) => Reason::Expired,
        (4, _) => Reason::NetworkError,
        (5, 3) => Reason::RateLimited,
        (5, 4 | 5) => Reason::SystemError,
        (5, 6) => Reason::SecurityError,
        (5, _) => Reason::SyntaxError,
        (6, _) => Reason::ContentError,
        (7, 1 | 2) if temp => Reason::Blocked,
        (7, 13) => Reason::Suspended,
        (7, 16) => Reason::EmailTooLarge,
        (7, 23 | 24 | 26 | 27) => Reason::AuthFailure,
        (7, 25) => Reason::RequirePtr,
        (7, 28) => Reason::RateLimited,
        (7, _) => Reason::SecurityError,
        (0, 0) => return None,
        _ => return None,
    })
}

/// Lowercase, addresses blanked, whitespace collapsed.
pub fn clean(s: &str) -> String {
    let mut t = s.to_lowercase();
    let addrs = find_addresses(&t);
    for (a, b, _) in addrs.into_iter().rev() {
        if a <= b && b <= t.len() && t.is_char_boundary(a) && t.is_char_boundary(b) {
            t.replace_range(a..b, "<addr>");
        }
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first SMTP reply code (`550`, `452`, ...) standing as a word.
pub fn reply_code_in(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    for i in 0..b.len().saturating_sub(2) {
        let w = &b[i..i + 3];
        if !(matches!(w[0], b'4' | b'5') && w[1].is_ascii_digit() && w[2].is_ascii_digit()) {
            continue;
        }
        let before_ok = i == 0
            || matches!(
                b[i - 1],
                b' ' | b'(' | b':' | b'#' | b'[' | b'<' | b'"' | b';'
            );
        let after_ok = b
            .get(i + 3)
            .is_none_or(|c| matches!(c, b' ' | b'-' | b')' | b']' | b'.' | b','));
        let not_status =
            b.get(i + 3) != Some(&b'.') || b.get(i + 4).is_none_or(|c| !c.is_ascii_digit());
        if before_ok && after_ok && not_status {
            let code: u16 = std::str::from_utf8(w).ok()?.parse().ok()?;
            if (421..=554).contains(&code) {
                return Some(code);
            }
        }
    }
    None
}
