//! The enclosed original message's headers, for correlation.
//!
//! The VERP return path normally identifies the message, but forwarders and
//! broken MTAs lose it; then the caller matches on `Message-ID` or on the
//! `X-Tidings-*` headers it stamped on the way out. They come from the
//! attached `message/rfc822` / `text/rfc822-headers` part, or from the
//! header block quoted in a plain-text bounce.

use crate::headers::{find_addresses, first_address, Headers};
use crate::model::OriginalMessage;

/// Builds the [`OriginalMessage`] from a header block; `subject` is the
/// decoded subject when mail-parser had it.
pub fn from_headers(h: &Headers, subject: Option<String>) -> OriginalMessage {
    let message_id = h.get("message-id").map(|v| {
        v.trim()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    });
    let subject = subject.or_else(|| h.get("subject").map(decode_words));
    OriginalMessage {
        message_id: message_id.filter(|m| !m.is_empty()),
        from: h.get("from").and_then(first_address),
        to: h
            .all("to")
            .flat_map(|v| find_addresses(v).into_iter().map(|a| a.2))
            .take(100)
            .collect(),
        subject,
        return_path: h.get("return-path").and_then(first_address),
        tidings_headers: h
            .iter()
            .filter(|(n, _)| n.len() > 10 && n[..10].eq_ignore_ascii_case("x-tidings-"))
            .take(32)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

/// Decodes RFC 2047 encoded-words with mail-parser (a header block of one
/// field, parsed as a message).
fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_string();
    }
    let raw = format!("Subject: {s}\n\n");
    mail_parser::MessageParser::new()
        .header_text(mail_parser::HeaderName::Subject)
        .parse_headers(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| s.to_string())
}
