//! A MIME message from the parts of a JSON send request.

use mail_builder::headers::address::Address as MbAddress;
use mail_builder::MessageBuilder;

/// One attachment, its content already decoded from base64.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// The parts of a message as the HTTP API receives them.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub from: (Option<String>, String),
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
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
    b = match &p.from.0 {
        Some(name) => b.from((name.as_str(), p.from.1.as_str())),
        None => b.from(p.from.1.as_str()),
    };
    if !p.to.is_empty() {
        b = b.to(MbAddress::new_list(
            p.to.iter().map(|a| MbAddress::from(a.as_str())).collect(),
        ));
    }
    if !p.cc.is_empty() {
        b = b.cc(MbAddress::new_list(
            p.cc.iter().map(|a| MbAddress::from(a.as_str())).collect(),
        ));
    }
    if let Some(r) = &p.reply_to {
        b = b.reply_to(r.as_str());
    }
    b = b.subject(p.subject.as_str());
    for (k, v) in &p.headers {
        // The builder knows a Message-ID only by this spelling.
        let name = if is_id(k) {
            "Message-ID".into()
        } else {
            k.clone()
        };
        b = b.header(name, mail_builder::headers::raw::Raw::new(v.clone()));
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
            from: (None, "app@example.com".into()),
            to: vec!["a@example.org".into()],
            subject: "hi".into(),
            text: Some("hello".into()),
            headers,
            ..Parts::default()
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
