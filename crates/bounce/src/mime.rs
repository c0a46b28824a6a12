//! Stage 2: the MIME walk.
//!
//! `mail-parser` decodes the structure (transfer encodings, charsets,
//! nesting); this module flattens it into what the detectors need: the
//! report's headers, its human-readable text, the machine-readable parts
//! (`message/delivery-status`, `message/feedback-report`) and the headers
//! of the enclosed original message. Depth, part count and text size are
//! capped here, so a hostile message costs bounded work downstream.

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

use crate::headers::Headers;

const MAX_DEPTH: usize = 12;
const MAX_PARTS: usize = 200;
const MAX_TEXT: usize = 128 * 1024;
const MAX_TOTAL_TEXT: usize = 512 * 1024;

/// The flattened report.
#[derive(Debug, Default)]
pub struct Walked {
    /// The report's own top-level headers.
    pub top: Headers,
    /// `report-type` of a top-level `multipart/report`, lowercased.
    pub report_type: Option<String>,
    /// Human-readable parts outside the enclosed message, in order.
    pub texts: Vec<String>,
    /// Bodies of `message/delivery-status` parts (and look-alikes).
    pub delivery_status: Vec<String>,
    /// Bodies of `message/feedback-report` parts.
    pub feedback: Vec<String>,
    /// Headers of the enclosed original message, when one is attached.
    pub original: Option<Headers>,
    /// Header block of the enclosed message, as text (for decoding).
    pub original_raw: Option<String>,
    /// Any `message/rfc822` part was found (even an empty one).
    pub has_attached_message: bool,
    /// The subject of the enclosed message, decoded by mail-parser.
    pub original_subject: Option<String>,
    total_text: usize,
    parts_seen: usize,
}

/// Walks a normalised (LF) message.
pub fn walk(raw: &[u8]) -> Walked {
    let fixed = repair_boundary(raw);
    let bytes = fixed.as_deref().unwrap_or(raw);
    // mail-parser has `debug_assert!`s that malformed input can reach (found
    // by fuzzing); in a debug build they panic. A message that upsets the
    // MIME parser is then read as one plain-text body instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| walk_inner(bytes)))
        .unwrap_or_else(|_| plain(bytes))
}

/// The whole message as headers plus one text body, without MIME.
fn plain(raw: &[u8]) -> Walked {
    let mut w = Walked::default();
    let text = String::from_utf8_lossy(raw);
    let (top, off) = Headers::parse(&text);
    w.top = top;
    w.push_text(&text[off..]);
    w
}

/// MIME bodies sent without a multipart `Content-Type` (old Sendmail
/// does this): when the body repeats a `--boundary` line and has part
/// headers, the missing header is put back.
fn repair_boundary(raw: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let (h, off) = Headers::parse(text);
    let ct = h.get("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/") || !(ct.is_empty() || ct.starts_with("text/plain")) {
        return None;
    }
    let body = &text[off..];
    if !body.contains("\nContent-Type:") && !body.contains("\nContent-type:") {
        return None;
    }
    // The first boundary must open the body (after at most a preamble
    // line), or the "--" lines are the quoted original's own parts.
    let boundary = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .find_map(|l| {
            let t = l.strip_prefix("--")?.trim_end();
            let ok = t.len() >= 6
                && !t.contains(' ')
                && !t.starts_with('-')
                && t.bytes().all(|c| c.is_ascii_graphic());
            (ok && body.matches(l.trim_end()).count() >= 2).then_some(t)
        })?;
    let mut out = String::with_capacity(raw.len() + 80);
    for (name, value) in h.iter() {
        if !name.eq_ignore_ascii_case("content-type") {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
    }
    out.push_str("Content-Type: multipart/mixed; boundary=\"");
    out.push_str(boundary);
    out.push_str("\"\n\n");
    out.push_str(body);
    Some(out.into_bytes())
}

fn walk_inner(raw: &[u8]) -> Walked {
    let mut w = Walked::default();
    let parser = MessageParser::new()
        .with_mime_headers()
        .header_text(mail_parser::HeaderName::Subject);
    match parser.parse(raw) {
        Some(msg) if !msg.parts.is_empty() => {
            let head = block(&msg.raw_message, &msg.parts[0]);
            w.top = Headers::parse(&head).0;
            if let Some(ct) = msg.parts[0].content_type() {
                if ct.ctype().eq_ignore_ascii_case("multipart")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                {
                    w.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
                }
            }
            walk_part(&mut w, &msg, 0, 0);
        }
        _ => return plain(raw),
    }
    w
}

fn block(raw: &[u8], part: &MessagePart<'_>) -> String {
    let s = part.offset_header as usize;
    let e = (part.offset_body as usize).max(s);
    String::from_utf8_lossy(raw.get(s..e).unwrap_or_default()).into_owned()
}

fn walk_part(w: &mut Walked, msg: &mail_parser::Message<'_>, id: usize, depth: usize) {
    if depth > MAX_DEPTH || w.parts_seen >= MAX_PARTS {
        return;
    }
    w.parts_seen += 1;
    let Some(part) = msg.parts.get(id) else {
        return;
    };
    let (ctype, subtype) = part
        .content_type()
        .map(|c| {
            (
                c.ctype().to_ascii_lowercase(),
                c.subtype().unwrap_or("").to_ascii_lowercase(),
            )
        })
        .unwrap_or_else(|| ("text".into(), "plain".into()));
    match &part.body {
        PartType::Multipart(children) => {
            for &c in children.iter().take(MAX_PARTS) {
                if c as usize != id {
                    walk_part(w, msg, c as usize, depth + 1);
                }
            }
        }
        PartType::Message(nested) => {
            w.has_attached_message = true;
            if w.original.is_none() && !nested.parts.is_empty() {
                let head = block(&nested.raw_message, &nested.parts[0]);
                let (h, _) = Headers::parse(&head);
                if !h.is_empty() {
                    w.original = Some(h);
                    w.original_raw = Some(head);
                    w.original_subject = nested.subject().map(str::to_string);
                }
            }
            // A report forwarded inside another message: look inside only
            // when the outer message had nothing machine-readable.
            if ctype == "message" && subtype == "rfc822" && w.delivery_status.is_empty() {
                let inner = nested
                    .parts
                    .first()
                    .and_then(|p| p.content_type())
                    .is_some_and(|c| {
                        c.attribute("report-type").is_some()
                            || c.subtype()
                                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                    });
                if inner && depth < MAX_DEPTH {
                    walk_part(w, nested, 0, depth + 1);
                }
            }
        }
        PartType::Text(t) | PartType::Html(t) => {
            let is_html = matches!(part.body, PartType::Html(_)) || subtype == "html";
            classify_leaf(w, &ctype, &subtype, t.as_ref(), is_html, id == 0);
        }
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            let t = String::from_utf8_lossy(&b[..b.len().min(MAX_TEXT)]);
            classify_leaf(w, &ctype, &subtype, &t, false, id == 0);
        }
    }
}

fn classify_leaf(w: &mut Walked, ctype: &str, subtype: &str, text: &str, html: bool, root: bool) {
    let capped = &text[..floor_char(text, MAX_TEXT)];
    match (ctype, subtype) {
        ("message" | "text", s) if s.contains("delivery-status") => {
            w.delivery_status.push(capped.to_string());
        }
        (_, "feedback-report") => w.feedback.push(capped.to_string()),
        ("text" | "message", "rfc822-headers") | ("message", "rfc822" | "global") => {
            w.has_attached_message = true;
            if w.original.is_none() {
                let (h, off) = Headers::parse(capped);
                if !h.is_empty() {
                    w.original = Some(h);
                    w.original_raw = Some(capped[..off].to_string());
                }
            }
        }
        ("text", _) if html && looks_like_html(capped) => {
            w.push_text(&mail_parser::decoders::html::html_to_text(capped))
        }
        ("text", _) => w.push_text(capped),
        ("application", s) if s.contains("json") => w.push_text(capped),
        // A multipart whose boundary was lost: mail-parser hands it over as text.
        ("multipart", _) => w.push_text(capped),
        _ if root => w.push_text(capped),
        _ => {}
    }
}

/// Some MTAs label plain text as `text/html`; only real markup is converted.
fn looks_like_html(s: &str) -> bool {
    let head = &s[..floor_char(s, 4096)].to_ascii_lowercase();
    [
        "<html", "<body", "<br", "<p>", "<p ", "<div", "<table", "<span", "<head",
    ]
    .iter()
    .any(|t| head.contains(t))
}

fn floor_char(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Walked {
    fn push_text(&mut self, t: &str) {
        let room = MAX_TOTAL_TEXT.saturating_sub(self.total_text);
        if room == 0 || t.trim().is_empty() {
            return;
        }
        let t = &t[..floor_char(t, room.min(MAX_TEXT))];
        self.total_text += t.len();
        // HTML conversions leave non-breaking spaces where layout had them.
        self.texts.push(t.replace('\u{a0}', " "));
    }

    /// All human-readable text joined with blank lines.
    pub fn text(&self) -> String {
        self.texts.join("\n\n")
    }
}
