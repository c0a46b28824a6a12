//! What an SMTP reply to RCPT or DATA means for one recipient.
//!
//! 2xx → sent; 4xx → deferred (retried); 5xx about the address → a hard
//! bounce; 5xx about policy, reputation, content or authentication → a
//! block. The enhanced status code (RFC 3463) decides first; the text
//! decides when the code is missing or generic (`5.0.0`, `5.5.0`, …), since
//! many servers put the real reason only in words.

/// The class of outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sent,
    Deferred,
    Bounce,
    Block,
}

/// A classified reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: Kind,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// From the fixed vocabulary: user_unknown, mailbox_full, host_unknown,
    /// mailbox_disabled, syntax_error, rejected (bounce); reputation,
    /// policy, content, auth, and the message's own faults
    /// email_too_large and (for its format) content (block), as for a
    /// DSN; temporary (deferred).
    pub reason: &'static str,
}

fn enhanced(text: &str) -> Option<(u8, u16, u16)> {
    text.split_whitespace().take(3).find_map(|w| {
        let mut it = w.trim_end_matches([',', ';', ':']).split('.');
        let c = it.next()?.parse::<u8>().ok()?;
        let s = it.next()?.parse::<u16>().ok()?;
        let d = it.next()?.parse::<u16>().ok()?;
        (it.next().is_none() && matches!(c, 2 | 4 | 5) && s < 1000 && d < 1000).then_some((c, s, d))
    })
}

const REPUTATION: &[&str] = &[
    "blocklist",
    "blacklist",
    "block list",
    "black list",
    "spamhaus",
    "rbl",
    "dnsbl",
    "reputation",
    "listed",
    "poor ip",
    "sender score",
    "barracuda",
    "spamcop",
];
const AUTH: &[&str] = &[
    "dmarc",
    "spf",
    "dkim",
    "authenticat",
    "unauthenticated",
    "ptr",
    "reverse dns",
];
const CONTENT: &[&str] = &["spam", "content", "virus", "malware", "phish", "url"];
const POLICY: &[&str] = &[
    "policy",
    "blocked",
    "denied",
    "refused",
    "rate",
    "not allowed",
    "prohibited",
    "relay",
];
const UNKNOWN_USER: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "doesn't exist",
    "not exist",
    "no mailbox",
    "mailbox unavailable",
    "mailbox not found",
    "invalid recipient",
    "recipient unknown",
    "unknown recipient",
    "address rejected",
    "no such recipient",
    "recipient not found",
    "user not found",
    "invalid mailbox",
    "account disabled",
];
const FULL: &[&str] = &[
    "mailbox full",
    "over quota",
    "quota exceeded",
    "insufficient storage",
    "mailbox is full",
];

/// Replies that fault the message, not the address: no other message
/// would fail at this recipient for the same reason.
const TOO_LARGE: &[&str] = &[
    "message too large",
    "message too big",
    "message size exceeds",
    "size exceeds",
    "exceeds the size limit",
    "exceeds size limit",
    "too much mail data",
];
const MALFORMED: &[&str] = &[
    "line too long",
    "line length",
    "lines too long",
    "bare lf",
    "bare cr",
    "malformed message",
    "message is not rfc",
    "not rfc 5322",
    "not rfc5322",
    "header too long",
];

fn has(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Classify a reply code with its text (the text may include the enhanced code).
pub fn classify(code: u16, text: &str) -> Outcome {
    let lower = text.to_ascii_lowercase();
    let esc = enhanced(text);
    let status = |fallback: &str| match esc {
        Some((c, s, d)) => format!("{c}.{s}.{d}"),
        None => fallback.to_string(),
    };
    match code {
        200..=299 => Outcome {
            kind: Kind::Sent,
            status: status("2.0.0"),
            reason: "delivered",
        },
        400..=499 => Outcome {
            kind: Kind::Deferred,
            status: status("4.0.0"),
            reason: if has(&lower, FULL) || matches!(esc, Some((_, 2, 2))) {
                "mailbox_full"
            } else {
                "temporary"
            },
        },
        _ => {
            let (kind, reason) = classify_permanent(esc, &lower);
            Outcome {
                kind,
                status: status(match (kind, reason) {
                    (_, "email_too_large") => "5.3.4",
                    (Kind::Block, "content") if has(&lower, MALFORMED) => "5.6.0",
                    (Kind::Block, _) => "5.7.1",
                    _ => "5.0.0",
                }),
                reason,
            }
        }
    }
}

fn classify_permanent(esc: Option<(u8, u16, u16)>, lower: &str) -> (Kind, &'static str) {
    let block_reason = || {
        if has(lower, AUTH) {
            "auth"
        } else if has(lower, REPUTATION) {
            "reputation"
        } else if has(lower, CONTENT) {
            "content"
        } else {
            "policy"
        }
    };
    // The message's own faults first: they say nothing of the address,
    // so they must not read as its hard bounce (and suppress it).
    match esc.map(|(_, s, d)| (s, d)) {
        Some((2, 3)) | Some((3, 4)) => return (Kind::Block, "email_too_large"),
        Some((6, _)) => return (Kind::Block, "content"),
        Some((5, _)) if !has(lower, UNKNOWN_USER) => return (Kind::Block, "content"),
        _ if has(lower, MALFORMED) => return (Kind::Block, "content"),
        _ if has(lower, TOO_LARGE) => return (Kind::Block, "email_too_large"),
        _ => {}
    }
    match esc.map(|(_, s, d)| (s, d)) {
        Some((1, 1)) | Some((1, 6)) => (Kind::Bounce, "user_unknown"),
        Some((1, 2)) | Some((1, 10)) | Some((4, 4)) => (Kind::Bounce, "host_unknown"),
        Some((1, 3)) => (Kind::Bounce, "syntax_error"),
        Some((2, 1)) => (Kind::Bounce, "mailbox_disabled"),
        Some((2, 2)) => (Kind::Bounce, "mailbox_full"),
        Some((7, 1)) if has(lower, UNKNOWN_USER) => (Kind::Bounce, "user_unknown"),
        Some((7, _)) => (Kind::Block, block_reason()),
        _ if has(lower, UNKNOWN_USER) => (Kind::Bounce, "user_unknown"),
        _ if has(lower, FULL) => (Kind::Bounce, "mailbox_full"),
        _ if has(lower, AUTH)
            || has(lower, REPUTATION)
            || has(lower, CONTENT)
            || has(lower, POLICY) =>
        {
            (Kind::Block, block_reason())
        }
        Some((1, _)) => (Kind::Bounce, "user_unknown"),
        _ => (Kind::Bounce, "rejected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_real_replies() {
        let cases = [
            (250, "2.0.0 Ok: queued as 12345", Kind::Sent, "2.0.0", "delivered"),
            (451, "4.7.1 Greylisted, try again later", Kind::Deferred, "4.7.1", "temporary"),
            (452, "4.2.2 The email account that you tried to reach is over quota", Kind::Deferred, "4.2.2", "mailbox_full"),
            (550, "5.1.1 The email account that you tried to reach does not exist.", Kind::Bounce, "5.1.1", "user_unknown"),
            (550, "Requested action not taken: mailbox unavailable", Kind::Bounce, "5.0.0", "user_unknown"),
            (550, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus", Kind::Block, "5.7.1", "reputation"),
            (550, "5.7.26 This message does not have authentication information or fails to pass authentication checks (DMARC)", Kind::Block, "5.7.26", "auth"),
            (554, "5.7.1 Message rejected as spam", Kind::Block, "5.7.1", "content"),
            (550, "5.7.1 Recipient address rejected: User unknown in virtual mailbox table", Kind::Bounce, "5.7.1", "user_unknown"),
            (552, "5.2.2 Mailbox full", Kind::Bounce, "5.2.2", "mailbox_full"),
            (552, "5.3.4 Message size exceeds fixed limit", Kind::Block, "5.3.4", "email_too_large"),
            (500, "Line too long.", Kind::Block, "5.6.0", "content"),
            (554, "5.6.0 Message is not RFC 5322 compliant", Kind::Block, "5.6.0", "content"),
            (554, "Message rejected as spam", Kind::Block, "5.7.1", "content"),
            (552, "Message size exceeds maximum permitted", Kind::Block, "5.3.4", "email_too_large"),
            (550, "5.5.0 Requested action not taken: mailbox unavailable, user unknown", Kind::Bounce, "5.5.0", "user_unknown"),
            (554, "Transaction failed", Kind::Bounce, "5.0.0", "rejected"),
            (553, "5.7.1 Sender policy violation", Kind::Block, "5.7.1", "policy"),
        ];
        for (code, text, kind, status, reason) in cases {
            let o = classify(code, text);
            assert_eq!(
                (o.kind, o.status.as_str(), o.reason),
                (kind, status, reason),
                "{code} {text}"
            );
        }
    }
}
