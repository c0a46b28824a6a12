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

/// Render the parts as RFC 5322 bytes (CRLF line endings).
pub fn build(p: &Parts) -> Vec<u8> {
    let mut b = MessageBuilder::new();
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
        b = b.header(k.clone(), mail_builder::headers::raw::Raw::new(v.clone()));
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
