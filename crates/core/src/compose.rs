//! The JSON of `POST /v1/messages`, and the rules that turn it into
//! message parts. Every field is checked before anything is written:
//!
//! - every address-bearing field (`from`, `to`, `cc`, `bcc`, `reply_to`)
//!   goes through [`Mailbox`], one parser for all;
//! - the subject, custom header values, attachment names and the control
//!   fields (`custom_id`, `group`, `tags`) refuse control characters;
//! - custom headers may not be ones tidings writes itself or ones that
//!   change who a message is from or to ([`RESERVED_HEADERS`]);
//! - an attachment's `content_type` must parse as a MIME type.
//!
//! Then [`tidings_mail::build`] writes the parts, folding and encoding so
//! that no line passes 998 octets.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use tidings_mail::build::{Attachment, Parts};
use tidings_mail::message::Track;
use tidings_mail::Mailbox;

use crate::{CoreError, ErrorCode};

/// An address given as `"a@example.com"`, `"Name <a@example.com>"` or
/// `{"email": "...", "name": "..."}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    Text(String),
    Object {
        email: String,
        #[serde(default)]
        name: Option<String>,
    },
}

/// One or many addresses.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressList {
    One(AddressInput),
    Many(Vec<AddressInput>),
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub filename: String,
    /// A MIME type, e.g. `application/pdf` or `text/plain; charset=utf-8`
    /// (default `application/octet-stream`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Base64.
    pub content: String,
}

/// Per-message tracking; absent options take the account's settings.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackInput {
    #[serde(default)]
    pub opens: Option<bool>,
    #[serde(default)]
    pub clicks: Option<bool>,
}

/// The JSON of `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub from: AddressInput,
    #[serde(default)]
    pub to: Option<AddressList>,
    #[serde(default)]
    pub cc: Option<AddressList>,
    #[serde(default)]
    pub bcc: Option<AddressList>,
    #[serde(default)]
    pub reply_to: Option<AddressInput>,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    /// Extra header fields. Names tidings writes itself, or that say who
    /// the message is from or to, are refused (`reserved_header`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub track: Option<TrackInput>,
}

/// Header fields a request may not set: tidings writes them, or they say
/// who a message is from or to (use the request's own fields), or they
/// belong to the transport. Compared case-insensitively; names that start
/// with `X-Tidings-`, `Resent-` or `ARC-` are refused too.
pub const RESERVED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "return-path",
    "message-id",
    "subject",
    "date",
    "mime-version",
    "dkim-signature",
    "received",
    "authentication-results",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "delivered-to",
    "envelope-to",
    "x-original-to",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
];
const RESERVED_PREFIXES: &[&str] = &["x-tidings-", "resent-", "arc-"];

/// Most custom headers in one request.
pub const MAX_HEADERS: usize = 100;
/// Longest custom header value, in bytes.
pub const MAX_HEADER_VALUE: usize = 8192;
/// Longest header name: the name, its colon and a space fit in one line
/// that leaves room for the value.
const MAX_HEADER_NAME: usize = 76;
/// Longest attachment file name and content type, in bytes.
const MAX_ATTACHMENT_LABEL: usize = 255;

/// A request's parts, checked, and what the accept path needs besides.
pub(crate) struct Composed {
    pub parts: Parts,
    /// Every recipient: `to`, `cc` and `bcc`.
    pub recipients: Vec<Mailbox>,
    pub custom_id: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
    pub track: Option<Track>,
}

fn bad(code: ErrorCode, msg: impl Into<String>) -> CoreError {
    CoreError::invalid(code, msg)
}

fn mailbox(field: &str, a: &AddressInput) -> Result<Mailbox, CoreError> {
    match a {
        AddressInput::Object { email, name } => Mailbox::new(name.as_deref(), email),
        AddressInput::Text(t) => Mailbox::parse(t),
    }
    .map_err(|e| bad(ErrorCode::InvalidAddress, format!("`{field}`: {e}")))
}

fn mailboxes(field: &str, l: &Option<AddressList>) -> Result<Vec<Mailbox>, CoreError> {
    match l {
        None => Ok(vec![]),
        Some(AddressList::One(a)) => Ok(vec![mailbox(field, a)?]),
        Some(AddressList::Many(v)) => v.iter().map(|a| mailbox(field, a)).collect(),
    }
}

fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// A custom header, checked: a field name of printable ASCII without a
/// colon, not reserved; a value without control characters but tab.
fn header(name: &str, value: &str) -> Result<(String, String), CoreError> {
    let ok_name = !name.is_empty()
        && name.len() <= MAX_HEADER_NAME
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !ok_name {
        return Err(bad(
            ErrorCode::InvalidHeader,
            format!(
                "header name `{}` is not a field name (1 to {MAX_HEADER_NAME} printable ASCII characters, no colon)",
                name.escape_default()
            ),
        ));
    }
    if is_reserved(name) {
        return Err(bad(
            ErrorCode::ReservedHeader,
            format!(
                "header `{name}` is set by tidings or by the request's own fields, and cannot be given in `headers`"
            ),
        ));
    }
    if value.len() > MAX_HEADER_VALUE {
        return Err(bad(
            ErrorCode::InvalidHeader,
            format!("header `{name}` is longer than {MAX_HEADER_VALUE} bytes"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            ErrorCode::InvalidHeader,
            format!("header `{name}` has a control character (line breaks are not allowed)"),
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// One line of printable text, for the subject.
fn one_line(field: &str, v: &str) -> Result<(), CoreError> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            ErrorCode::InvalidMessage,
            format!("`{field}` is one line of text, without control characters"),
        ));
    }
    Ok(())
}

/// A body with its line breaks made one kind (a lone CR or LF becomes a
/// line break, as a reader would see it; the builder writes CRLF), and
/// without NUL, which no text part may carry.
fn body(field: &str, v: &str) -> Result<String, CoreError> {
    if v.contains('\0') {
        return Err(bad(
            ErrorCode::InvalidMessage,
            format!("`{field}` contains a NUL character"),
        ));
    }
    Ok(if v.contains('\r') {
        v.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        v.to_string()
    })
}

fn attachment(a: &AttachmentInput) -> Result<Attachment, CoreError> {
    let label_ok = |s: &str| {
        !s.is_empty() && s.len() <= MAX_ATTACHMENT_LABEL && !s.chars().any(char::is_control)
    };
    if !label_ok(&a.filename) {
        return Err(bad(
            ErrorCode::InvalidMessage,
            format!("an attachment's `filename` must be 1 to {MAX_ATTACHMENT_LABEL} bytes, without control characters"),
        ));
    }
    let content_type = match &a.content_type {
        None => "application/octet-stream".to_string(),
        Some(ct) => {
            let parsed = (label_ok(ct) && ct.is_ascii())
                .then(|| ct.parse::<mime::Mime>().ok())
                .flatten()
                .filter(|m| !m.type_().as_str().is_empty() && !m.subtype().as_str().is_empty())
                .ok_or_else(|| {
                    bad(
                        ErrorCode::InvalidMessage,
                        format!(
                            "attachment `{}`: `content_type` is not a MIME type (like `application/pdf`)",
                            a.filename
                        ),
                    )
                })?;
            parsed.to_string()
        }
    };
    let content = base64::engine::general_purpose::STANDARD
        .decode(a.content.as_bytes())
        .map_err(|_| {
            bad(
                ErrorCode::InvalidMessage,
                format!("attachment `{}` is not base64", a.filename),
            )
        })?;
    Ok(Attachment {
        filename: a.filename.clone(),
        content_type,
        content,
    })
}

fn control(field: &'static str, v: &Option<String>) -> Result<Option<String>, CoreError> {
    match v {
        None => Ok(None),
        Some(v) => tidings_mail::message::check_control(field, v.clone())
            .map(Some)
            .map_err(|_| {
                bad(
                    ErrorCode::InvalidMessage,
                    format!("`{field}` must be 1 to 255 printable characters"),
                )
            }),
    }
}

/// Check every field of `req` and gather the parts to build.
pub(crate) fn compose(req: SendRequest) -> Result<Composed, CoreError> {
    let from = mailbox("from", &req.from)?;
    let to = mailboxes("to", &req.to)?;
    let cc = mailboxes("cc", &req.cc)?;
    let bcc = mailboxes("bcc", &req.bcc)?;
    let reply_to = req
        .reply_to
        .as_ref()
        .map(|r| mailbox("reply_to", r))
        .transpose()?;
    if req.text.is_none() && req.html.is_none() {
        return Err(bad(
            ErrorCode::InvalidMessage,
            "a message needs `text`, `html` or both",
        ));
    }
    one_line("subject", &req.subject)?;
    let text = req.text.as_deref().map(|t| body("text", t)).transpose()?;
    let html = req.html.as_deref().map(|t| body("html", t)).transpose()?;
    if req.headers.len() > MAX_HEADERS {
        return Err(bad(
            ErrorCode::InvalidHeader,
            format!("at most {MAX_HEADERS} custom headers"),
        ));
    }
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| header(k, v))
        .collect::<Result<Vec<_>, _>>()?;
    let attachments = req
        .attachments
        .iter()
        .map(attachment)
        .collect::<Result<Vec<_>, _>>()?;
    let custom_id = control("custom_id", &req.custom_id)?;
    let group = control("group", &req.group)?;
    let tags = if req.tags.is_empty() {
        vec![]
    } else {
        if req.tags.iter().any(|t| t.contains(',')) {
            return Err(bad(
                ErrorCode::InvalidMessage,
                "a tag cannot contain a comma",
            ));
        }
        tidings_mail::message::parse_tags(&req.tags.join(","))
            .map_err(|e| bad(ErrorCode::InvalidMessage, e.to_string()))?
    };
    let recipients = to.iter().chain(&cc).chain(&bcc).cloned().collect();
    Ok(Composed {
        parts: Parts {
            from,
            to,
            cc,
            reply_to,
            subject: req.subject,
            text,
            html,
            headers,
            attachments,
        },
        recipients,
        custom_id,
        group,
        tags,
        track: req.track.map(|t| Track {
            opens: t.opens,
            clicks: t.clicks,
        }),
    })
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
