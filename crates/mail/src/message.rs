//! Preparing a submitted message for storage.

use bytes::Bytes;
use mail_parser::{HeaderValue, MessageParser};

/// Tracking choices a sender can make per message (`X-Tidings-Track` or JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub opens: Option<bool>,
    pub clicks: Option<bool>,
}

/// A message ready to store, and what events will say about it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The message with control headers removed and a Message-ID ensured.
    pub raw: Bytes,
    pub from: String,
    pub subject: Option<String>,
    /// The Message-ID header, with angle brackets.
    pub smtp_message_id: String,
    pub custom_id: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
    pub track: Track,
    /// Header lines carry 8-bit bytes (needs SMTPUTF8 to relay).
    pub utf8_headers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message has no header section")]
    NoHeaders,
    #[error("the message has no From header")]
    NoFrom,
    #[error("header line {0} is malformed")]
    BadHeader(usize),
    #[error("the {0} control header is invalid: {1}")]
    BadControl(&'static str, String),
    #[error("the message cannot be parsed as MIME")]
    Unparsable,
    #[error("line {0} is longer than {MAX_LINE} octets (RFC 5322 2.1.1); fold long header fields and send long body lines quoted-printable or base64")]
    LineTooLong(usize),
}

/// Longest line of a message, its CRLF not counted (RFC 5322 2.1.1). A
/// longer one is refused at the door: relays refuse it anyway, often with
/// a 5xx that would read as the recipient's fault.
pub const MAX_LINE: usize = 998;

/// The 1-based number of the first line longer than [`MAX_LINE`].
fn first_long_line(raw: &[u8]) -> Option<usize> {
    raw.split(|b| *b == b'\n')
        .position(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > MAX_LINE)
        .map(|i| i + 1)
}

const MAX_TAGS: usize = 10;
const MAX_CONTROL_LEN: usize = 255;

/// Read and strip `X-Tidings-*` headers, add a Message-ID when missing
/// (`<ulid@id_domain>`), and collect From/Subject/Message-ID. A message
/// with a line over [`MAX_LINE`] octets is refused.
pub fn prepare(raw: &[u8], id_domain: &str) -> Result<Prepared, MessageError> {
    if let Some(n) = first_long_line(raw) {
        return Err(MessageError::LineTooLong(n));
    }
    let (head_end, body_start) = split_head(raw).ok_or(MessageError::NoHeaders)?;
    let head = &raw[..head_end];
    let fields = split_fields(head)?;

    let mut kept: Vec<&[u8]> = Vec::with_capacity(fields.len() + 1);
    let mut custom_id = None;
    let mut group = None;
    let mut tags = Vec::new();
    let mut track = Track::default();
    let mut has_message_id = false;
    for f in &fields {
        let name = field_name(f);
        let lower = name.to_ascii_lowercase();
        if let Some(ctl) = lower.strip_prefix("x-tidings-") {
            let value = unfold(field_value(f));
            match ctl {
                "custom-id" => custom_id = Some(check_control("X-Tidings-Custom-ID", value)?),
                "group" => group = Some(check_control("X-Tidings-Group", value)?),
                "tags" => tags = parse_tags(&value)?,
                "track" => track = parse_track(&value)?,
                _ => {}
            }
            continue;
        }
        if lower == "message-id" {
            has_message_id = true;
        }
        kept.push(f);
    }

    let mut out = Vec::with_capacity(raw.len() + 64);
    if !has_message_id {
        out.extend_from_slice(
            format!("Message-ID: <{}>\r\n", new_message_id(id_domain)).as_bytes(),
        );
    }
    for f in &kept {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[body_start..]);

    let parsed = MessageParser::default()
        .parse_headers(&out[..])
        .ok_or(MessageError::Unparsable)?;
    let from = match parsed.header("From") {
        Some(HeaderValue::Address(a)) => a
            .first()
            .and_then(|a| a.address.as_deref())
            .map(str::to_string),
        _ => None,
    }
    .ok_or(MessageError::NoFrom)?;
    let subject = parsed.subject().map(str::to_string);
    let smtp_message_id = format!("<{}>", parsed.message_id().ok_or(MessageError::Unparsable)?);
    let utf8_headers = !out[..head_end.min(out.len())].is_ascii();
    Ok(Prepared {
        raw: Bytes::from(out),
        from,
        subject,
        smtp_message_id,
        custom_id,
        group,
        tags,
        track,
        utf8_headers,
    })
}

/// A new Message-ID, without its angle brackets: `ulid@id_domain`. The
/// domain is this server's configured host name, never the OS's.
pub fn new_message_id(id_domain: &str) -> String {
    format!(
        "{}@{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase(),
        id_domain
    )
}

/// The message without any field named `name` (case-insensitive).
pub fn strip_header(raw: &Bytes, name: &str) -> Bytes {
    let Some((head_end, _)) = split_head(raw) else {
        return raw.clone();
    };
    let Ok(fields) = split_fields(&raw[..head_end]) else {
        return raw.clone();
    };
    let mut out = Vec::with_capacity(raw.len());
    for f in fields {
        if !field_name(f).eq_ignore_ascii_case(name) {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(&raw[head_end..]);
    Bytes::from(out)
}

/// End of the header block and start of the body. Accepts CRLF or bare LF.
fn split_head(raw: &[u8]) -> Option<(usize, usize)> {
    if raw.starts_with(b"\r\n") {
        return None;
    }
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some((i + 1, i + 3));
            }
            if rest.starts_with(b"\n") {
                return Some((i + 1, i + 2));
            }
            if rest.is_empty() {
                return Some((i + 1, i + 1));
            }
        }
        i += 1;
    }
    // Headers only, without a final line break.
    Some((raw.len(), raw.len()))
}

/// Header fields with their folded continuation lines, each ending in a
/// line break (CRLF added where missing).
fn split_fields(head: &[u8]) -> Result<Vec<&[u8]>, MessageError> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut line_no = 0;
    let mut i = 0;
    while i < head.len() {
        let end = head[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(head.len());
        let line = &head[i..end];
        line_no += 1;
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if i > start {
                fields.push(&head[start..i]);
            }
            start = i;
            let colon = line.iter().position(|&b| b == b':');
            let name_ok = colon.is_some_and(|c| {
                c > 0 && line[..c].iter().all(|&b| b.is_ascii_graphic() && b != b':')
            });
            if !name_ok {
                return Err(MessageError::BadHeader(line_no));
            }
        } else if i == 0 {
            return Err(MessageError::BadHeader(line_no));
        }
        i = end;
    }
    if head.len() > start {
        fields.push(&head[start..]);
    }
    Ok(fields)
}

fn field_name(f: &[u8]) -> String {
    let colon = f.iter().position(|&b| b == b':').unwrap_or(0);
    String::from_utf8_lossy(&f[..colon]).trim().to_string()
}

fn field_value(f: &[u8]) -> &[u8] {
    let colon = f.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
    &f[colon..]
}

fn unfold(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .replace(['\r', '\n'], "")
        .trim()
        .to_string()
}

/// A control value (custom id, group): 1 to 255 printable characters.
pub fn check_control(name: &'static str, v: String) -> Result<String, MessageError> {
    if v.is_empty() || v.len() > MAX_CONTROL_LEN || v.chars().any(char::is_control) {
        return Err(MessageError::BadControl(
            name,
            format!("must be 1 to {MAX_CONTROL_LEN} printable characters"),
        ));
    }
    Ok(v)
}

/// Comma-separated tags, trimmed, at most ten.
pub fn parse_tags(v: &str) -> Result<Vec<String>, MessageError> {
    let tags: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.len() > MAX_TAGS
        || tags
            .iter()
            .any(|t| t.len() > 100 || t.chars().any(char::is_control))
    {
        return Err(MessageError::BadControl(
            "X-Tidings-Tags",
            format!("at most {MAX_TAGS} tags of at most 100 printable characters"),
        ));
    }
    Ok(tags)
}

/// `opens`, `clicks`, `all`, `none`, or `opens=off, clicks=on` style lists.
fn parse_track(v: &str) -> Result<Track, MessageError> {
    let mut t = Track::default();
    for part in v.split(',').map(|p| p.trim().to_ascii_lowercase()) {
        let (key, on) = match part.split_once('=') {
            Some((k, val)) => (
                k.trim().to_string(),
                matches!(val.trim(), "on" | "true" | "yes" | "1"),
            ),
            None => (part.clone(), true),
        };
        match key.as_str() {
            "opens" | "open" => t.opens = Some(on),
            "clicks" | "click" => t.clicks = Some(on),
            "all" => {
                t.opens = Some(on);
                t.clicks = Some(on);
            }
            "none" => {
                t.opens = Some(false);
                t.clicks = Some(false);
            }
            "" => {}
            _ => {
                return Err(MessageError::BadControl(
                    "X-Tidings-Track",
                    format!("unknown option `{key}`"),
                ))
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Shop <shop@example.com>\r\nTo: a@example.org\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nX-Tidings-Custom-ID: order-42\r\nX-Tidings-Tags: receipts, eu\r\nX-Tidings-Group: billing\r\nX-Tidings-Track: opens, clicks=off\r\nX-Other: keep\r\n folded\r\n\r\nHello\r\n";

    #[test]
    fn control_headers_are_read_and_stripped() {
        let p = prepare(MSG, "tidings.test").unwrap();
        assert_eq!(p.custom_id.as_deref(), Some("order-42"));
        assert_eq!(p.group.as_deref(), Some("billing"));
        assert_eq!(p.tags, ["receipts", "eu"]);
        assert_eq!(
            p.track,
            Track {
                opens: Some(true),
                clicks: Some(false)
            }
        );
        assert_eq!(p.from, "shop@example.com");
        assert_eq!(p.subject.as_deref(), Some("Café"));
        let text = String::from_utf8(p.raw.to_vec()).unwrap();
        assert!(!text.to_ascii_lowercase().contains("x-tidings"));
        assert!(text.contains("X-Other: keep\r\n folded\r\n\r\nHello\r\n"));
        assert!(text.starts_with("Message-ID: <"));
        assert!(p.smtp_message_id.ends_with("@tidings.test>"));
    }

    #[test]
    fn existing_message_id_is_kept() {
        let m = b"Message-ID: <abc@x.example>\nFrom: a@example.com\n\nbody\n";
        let p = prepare(m, "t.test").unwrap();
        assert_eq!(p.smtp_message_id, "<abc@x.example>");
        assert!(p.raw.ends_with(b"\r\nbody\n"));
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(
            prepare(b"\r\nbody", "t").unwrap_err(),
            MessageError::NoHeaders
        );
        assert_eq!(
            prepare(b"To: a@example.com\r\n\r\nx", "t").unwrap_err(),
            MessageError::NoFrom
        );
        assert!(matches!(
            prepare(b"From: a@example.com\r\nnot a header\r\n\r\nx", "t"),
            Err(MessageError::BadHeader(2))
        ));
        assert!(matches!(
            prepare(b" folded first\r\nFrom: a@example.com\r\n\r\nx", "t"),
            Err(MessageError::BadHeader(1))
        ));
        let long = format!(
            "From: a@example.com\r\nX-Tidings-Custom-ID: {}\r\n\r\nx",
            "x".repeat(300)
        );
        assert!(matches!(
            prepare(long.as_bytes(), "t"),
            Err(MessageError::BadControl(..))
        ));
    }
}
