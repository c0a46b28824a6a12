//! A MIME message from the parts of a JSON send request.
//!
//! Every line written stays within RFC 5322's 998 octets: addresses and
//! names go through mail-builder's encoders, the subject and any header
//! value that is not plain folded ASCII are written as RFC 2047 encoded
//! words, and bodies are quoted-printable or base64 whenever a line would
//! be long. The parts arrive checked ([`crate::mailbox`], and the caller's
//! header policy); this module only writes them.

use mail_builder::headers::address::Address as MbAddress;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::HeaderType;
use mail_builder::MessageBuilder;

use crate::mailbox::Mailbox;

/// One attachment, its content already decoded from base64.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// The parts of a message as the HTTP API receives them.
#[derive(Debug, Clone)]
pub struct Parts {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
}

/// Longest run without white space that a header value may have and still
/// be written as it is (folded at its spaces); a longer one is encoded.
const LONGEST_RUN: usize = 900;

fn mb(m: &Mailbox) -> MbAddress<'_> {
    let email = m.address.to_string();
    match &m.name {
        Some(n) => MbAddress::new_address(Some(n.as_str()), email),
        None => MbAddress::new_address(None::<&str>, email),
    }
}

fn list(ms: &[Mailbox]) -> MbAddress<'_> {
    MbAddress::new_list(ms.iter().map(mb).collect())
}

/// A header value as written: as it is when it is printable ASCII whose
/// folds keep every line short, else as RFC 2047 encoded words (which
/// mail-builder splits into short lines).
fn header_value(v: &str) -> HeaderType<'_> {
    let plain = v
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        && v.split([' ', '\t']).all(|run| run.len() <= LONGEST_RUN);
    if plain {
        HeaderType::Raw(Raw::new(v))
    } else {
        HeaderType::Text(Text::new(v))
    }
}

/// Render the parts as RFC 5322 bytes (CRLF line endings), with a
/// Message-ID in `id_domain` unless the parts' headers carry one.
pub fn build(p: &Parts, id_domain: &str) -> Vec<u8> {
    let mut b = MessageBuilder::new();
    // Without one, the builder would make a Message-ID with the OS's host
    // name, which is not the name this server was configured to use.
    let is_id = |k: &str| k.eq_ignore_ascii_case("Message-ID");
    if !p.headers.iter().any(|(k, _)| is_id(k)) {
        b = b.message_id(crate::message::new_message_id(id_domain));
    }
    b = b.from(mb(&p.from));
    if !p.to.is_empty() {
        b = b.to(list(&p.to));
    }
    if !p.cc.is_empty() {
        b = b.cc(list(&p.cc));
    }
    if let Some(r) = &p.reply_to {
        b = b.reply_to(mb(r));
    }
    b = b.subject(p.subject.as_str());
    for (k, v) in &p.headers {
        // The builder knows a Message-ID only by this spelling.
        let name = if is_id(k) {
            "Message-ID".into()
        } else {
            k.clone()
        };
        b = b.header(name, header_value(v));
    }
    if let Some(t) = &p.text {
        b = b.text_body(t.as_str());
    }
    if let Some(h) = &p.html {
        b = b.html_body(h.as_str());
    }
    for a in &p.attachments {
        b = b.attachment(
            a.content_type.clone(),
            a.filename.clone(),
            a.content.clone(),
        );
    }
    b.write_to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_ids(raw: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(raw)
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .map(|l| l[l.find(':').unwrap() + 1..].trim().to_string())
            .collect()
    }

    fn parts(headers: Vec<(String, String)>) -> Parts {
        Parts {
            from: Mailbox::parse("app@example.com").unwrap(),
            to: vec![Mailbox::parse("a@example.org").unwrap()],
            cc: vec![],
            reply_to: None,
            subject: "hi".into(),
            text: Some("hello".into()),
            html: None,
            headers,
            attachments: vec![],
        }
    }

    #[test]
    fn the_message_id_is_in_the_configured_domain() {
        let ids = message_ids(&build(&parts(vec![]), "mail.example.net"));
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert!(
            ids[0].starts_with('<') && ids[0].ends_with("@mail.example.net>"),
            "{ids:?}"
        );
    }

    #[test]
    fn a_message_id_among_the_headers_is_the_only_one() {
        let raw = build(
            &parts(vec![("message-id".into(), "<mine@app.example>".into())]),
            "mail.example.net",
        );
        assert_eq!(message_ids(&raw), ["<mine@app.example>"]);
    }
}
