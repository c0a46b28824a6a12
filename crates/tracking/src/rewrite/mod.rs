//! Rewriting an outgoing message for tracking.
//!
//! The message is walked as raw bytes ([`mime`]): only the text/html and
//! text/plain parts that are not attachments are decoded, rewritten and
//! encoded again; every other byte (other parts, attachments, preambles,
//! delimiter lines, header folding) is copied as it came. A part that had
//! nothing to change is copied as it came too, without re-encoding.
//!
//! In a rewritten part:
//! - HTML goes through `lol_html`, a streaming rewriter that re-emits only
//!   the tags it changes, so comments, Outlook conditional comments,
//!   whitespace and entities elsewhere stay as written ([`html`]).
//! - Plain text has its bare `http(s)://` URLs replaced ([`text`]).
//! - Charset: parts in an ASCII-compatible charset (UTF-8, ISO-8859-*,
//!   windows-125x, Shift_JIS, EUC-*, GBK, Big5, ...) are rewritten in that
//!   charset without transcoding: every byte inserted is ASCII, so the rest
//!   stays byte for byte and the charset parameter is unchanged. An unknown
//!   charset label is treated the same way (its bytes pass through).
//!   ISO-2022-JP is decoded, rewritten and encoded back to ISO-2022-JP
//!   (lossless, since only ASCII was added). UTF-16 parts become UTF-8,
//!   with the `charset` parameter and any `<meta charset>` updated.
//!   Charsets the Encoding Standard maps to "replacement" (ISO-2022-KR,
//!   HZ-GB-2312, ...) cannot be decoded; such parts are left alone.
//! - Transfer encoding: quoted-printable and base64 parts are encoded again
//!   the same way (lines of at most 76 characters). A `7bit`/`8bit` part
//!   stays so unless a line grew past 998 characters or 8-bit text appeared
//!   in a `7bit` part; then it becomes quoted-printable.
//! - Links are numbered in the order they appear in the message (parts in
//!   order, document order within a part); `Rewritten::links[i]` is the
//!   original URL of link `i`, which the redirect endpoint looks up.
//! - The open pixel goes into the first HTML part only (a second HTML body
//!   is an alternative or a continuation of the same view).
//! - The `{{tidings_unsubscribe_url}}` placeholder is replaced wherever the
//!   sender wrote it, also when `unsubscribe` is off: a literal template
//!   tag in a delivered mail is never right. `unsubscribe` controls the
//!   `List-Unsubscribe` headers.
//! - With `unsubscribe` on, existing `List-Unsubscribe` and
//!   `List-Unsubscribe-Post` fields are replaced, not merged: RFC 8058
//!   one-click needs exactly one HTTPS URI that accepts the POST, and that
//!   must be ours for the unsubscribe to be recorded.
//! - A message/rfc822 part (a forwarded message) is never rewritten.

mod codec;
mod entities;
mod html;
mod mime;
mod text;

use encoding_rs::Encoding;
use url::Url;

use crate::token::{Claims, TokenKeys, TokenKind};
use codec::Cte;
use mime::{ContentType, Field};

/// The placeholder a sender writes where the unsubscribe URL goes.
pub const UNSUBSCRIBE_PLACEHOLDER: &str = "{{tidings_unsubscribe_url}}";
/// Path segments under the tracking base URL: `{base}/o/{token}` (open
/// pixel), `{base}/c/{token}` (click), `{base}/u/{token}` (unsubscribe).
pub const OPEN_PATH: &str = "o";
pub const CLICK_PATH: &str = "c";
pub const UNSUBSCRIBE_PATH: &str = "u";

/// Makes the token for one tracking URL of the recipient being rewritten.
pub trait Tokens {
    fn token(&self, kind: TokenKind) -> String;
}

impl<F: Fn(TokenKind) -> String> Tokens for F {
    fn token(&self, kind: TokenKind) -> String {
        self(kind)
    }
}

/// Signed tokens for one recipient of one message.
#[derive(Debug, Clone, Copy)]
pub struct RecipientTokens<'a> {
    pub keys: &'a TokenKeys,
    pub account_id: i64,
    pub message_id: i64,
    pub recipient_id: i64,
}

impl Tokens for RecipientTokens<'_> {
    fn token(&self, kind: TokenKind) -> String {
        self.keys.issue(&Claims {
            account_id: self.account_id,
            message_id: self.message_id,
            recipient_id: self.recipient_id,
            kind,
        })
    }
}

/// The tracking URL of `kind` with `token` under `base`.
pub fn tracking_url(base: &Url, kind: TokenKind, token: &str) -> String {
    format!(
        "{}/{}/{token}",
        base.as_str().trim_end_matches('/'),
        segment(kind)
    )
}

fn segment(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Open => OPEN_PATH,
        TokenKind::Click { .. } => CLICK_PATH,
        TokenKind::Unsubscribe => UNSUBSCRIBE_PATH,
    }
}

/// What to do to a message.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// Insert the open pixel into the HTML.
    pub track_opens: bool,
    /// Replace http(s) links in the HTML and text parts.
    pub track_clicks: bool,
    /// Add `List-Unsubscribe` (with `List-Unsubscribe-Post`, RFC 8058).
    pub unsubscribe: bool,
    /// The public base of the tracking endpoints, e.g. `https://t.example.com`.
    pub base_url: Url,
    /// An address for a `mailto:` entry in `List-Unsubscribe`; its subject
    /// is `unsubscribe:TOKEN`, so the inbound side can tell who it was.
    pub unsubscribe_mailto: Option<String>,
    pub limits: Limits,
}

impl RewriteOptions {
    /// Everything on, default limits, no mailto.
    pub fn new(base_url: Url) -> Self {
        Self {
            track_opens: true,
            track_clicks: true,
            unsubscribe: true,
            base_url,
            unsubscribe_mailto: None,
            limits: Limits::default(),
        }
    }
}

/// Bounds on the work one message can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Larger messages are refused with [`RewriteError::TooLarge`].
    pub max_message_bytes: usize,
    /// Multipart nesting deeper than this is copied without looking inside.
    pub max_depth: usize,
    /// Parts after this many are copied as they are.
    pub max_parts: usize,
    /// Links after this many are left untracked.
    pub max_links: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_depth: 16,
            max_parts: 500,
            max_links: 1000,
        }
    }
}

/// The rewritten message and what the tracking endpoints need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub message: Vec<u8>,
    /// The original URL of each tracked link, by link index.
    pub links: Vec<Url>,
    /// What was left alone and why (for logs; the message is still good).
    pub notes: Vec<Note>,
}

/// Something the rewriter chose not to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Multipart nesting beyond `max_depth`, copied without rewriting.
    TooDeep,
    /// More parts than `max_parts`; the rest were copied as they are.
    TooManyParts,
    /// More links than `max_links`; the rest are not tracked.
    TooManyLinks,
    /// A part has a transfer encoding this crate does not rewrite.
    UnknownTransferEncoding(String),
    /// A part's body is not valid in its transfer encoding.
    BadTransferEncoding,
    /// A part's charset cannot be decoded (or its text is not valid in it).
    UndecodableCharset(String),
    /// The HTML rewriter gave up on a part (it is copied unchanged).
    HtmlNotRewritten(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the message is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has no header fields")]
    NoHeaders,
    #[error("the unsubscribe mailto address is not a plain address")]
    BadMailto,
}

/// Rewrite `raw` for one recipient. See the module documentation.
pub fn rewrite(
    raw: &[u8],
    opts: &RewriteOptions,
    tokens: &dyn Tokens,
) -> Result<Rewritten, RewriteError> {
    if raw.len() > opts.limits.max_message_bytes {
        return Err(RewriteError::TooLarge {
            size: raw.len(),
            limit: opts.limits.max_message_bytes,
        });
    }
    if let Some(m) = &opts.unsubscribe_mailto {
        let plain = |b: u8| b.is_ascii_graphic() && !b"<>,;\"()[]\\?&#%".contains(&b);
        if m.is_empty() || !m.bytes().all(plain) || m.matches('@').count() != 1 {
            return Err(RewriteError::BadMailto);
        }
    }
    if mime::split_entity(raw).head.is_empty() {
        return Err(RewriteError::NoHeaders);
    }
    let eol: &[u8] = match memchr::memchr(b'\n', raw) {
        Some(p) if p > 0 && raw[p - 1] == b'\r' => b"\r\n",
        Some(_) => b"\n",
        None => b"\r\n",
    };
    let mut ctx = Ctx {
        opts,
        tokens,
        base: opts.base_url.as_str().trim_end_matches('/').to_string(),
        eol,
        links: Vec::new(),
        notes: Vec::new(),
        unsubscribe_token: None,
        pixel_placed: false,
        parts: 0,
    };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8 + 512);
    ctx.entity(raw, false, 0, true, &mut out);
    Ok(Rewritten {
        message: out,
        links: ctx.links,
        notes: ctx.notes,
    })
}

/// State of one rewrite, shared by the part rewriters.
pub(crate) struct Ctx<'a> {
    opts: &'a RewriteOptions,
    tokens: &'a dyn Tokens,
    /// The base URL without a trailing slash.
    base: String,
    eol: &'static [u8],
    links: Vec<Url>,
    notes: Vec<Note>,
    unsubscribe_token: Option<String>,
    pixel_placed: bool,
    parts: usize,
}

/// How a rewritten leaf's header fields change.
struct Leaf {
    body: Vec<u8>,
    cte: Option<Cte>,
    charset: Option<&'static str>,
}

impl Ctx<'_> {
    fn url(&self, kind: TokenKind, token: &str) -> String {
        let mut u = String::with_capacity(self.base.len() + 3 + token.len());
        u.push_str(&self.base);
        u.push('/');
        u.push_str(segment(kind));
        u.push('/');
        u.push_str(token);
        u
    }

    /// Whether `s` already is one of our tracking URLs (for instance the
    /// unsubscribe URL that replaced a placeholder).
    pub(crate) fn is_tracking_url(&self, s: &str) -> bool {
        s.strip_prefix(self.base.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(seg, _)| [OPEN_PATH, CLICK_PATH, UNSUBSCRIBE_PATH].contains(&seg))
    }

    pub(crate) fn unsubscribe_url(&mut self) -> String {
        let token = self
            .unsubscribe_token
            .get_or_insert_with(|| self.tokens.token(TokenKind::Unsubscribe))
            .clone();
        self.url(TokenKind::Unsubscribe, &token)
    }

    pub(crate) fn open_url(&self) -> String {
        self.url(TokenKind::Open, &self.tokens.token(TokenKind::Open))
    }

    /// The tracking URL to put in place of `original` (already decoded as
    /// the browser would), or `None` to leave the link alone.
    ///
    /// `enc` is the charset of the document the link is in: like a
    /// browser, non-ASCII in the query is percent-encoded in that charset.
    pub(crate) fn click_url(&mut self, original: &str, enc: &'static Encoding) -> Option<String> {
        if !self.opts.track_clicks || self.is_tracking_url(original) {
            return None;
        }
        let url = if enc == encoding_rs::UTF_8 || original.is_ascii() {
            Url::parse(original)
        } else {
            let in_charset = query_encoder(move |s| enc.encode(s).0);
            Url::options()
                .encoding_override(Some(&in_charset))
                .parse(original)
        }
        .ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        if self.links.len() >= self.opts.limits.max_links {
            if !self.notes.contains(&Note::TooManyLinks) {
                self.notes.push(Note::TooManyLinks);
            }
            return None;
        }
        let link_index = self.links.len() as u32;
        self.links.push(url);
        let kind = TokenKind::Click { link_index };
        Some(self.url(kind, &self.tokens.token(kind)))
    }

    fn note(&mut self, n: Note) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    /// Rewrite one entity (the message or a part) into `out`.
    fn entity(&mut self, raw: &[u8], in_digest: bool, depth: usize, top: bool, out: &mut Vec<u8>) {
        self.parts += 1;
        if self.parts > self.opts.limits.max_parts {
            self.note(Note::TooManyParts);
            out.extend_from_slice(raw);
            return;
        }
        let e = mime::split_entity(raw);
        let fields = mime::fields(e.head);
        let field = |name: &str| fields.iter().find(|f| f.is(name)).map(Field::value);
        let ct = match field("content-type") {
            Some(v) => ContentType::parse(&v),
            None if in_digest => ContentType::parse("message/rfc822"),
            None => ContentType::parse("text/plain"),
        };
        let attachment = field("content-disposition")
            .and_then(|v| ContentType::parse(&v))
            .is_some_and(|d| d.value == "attachment");

        let mut leaf = None;
        let mut multipart = None;
        match &ct {
            Some(ct) if ct.is_multipart() => {
                if depth >= self.opts.limits.max_depth {
                    self.note(Note::TooDeep);
                } else if let Some(b) = ct.param("boundary") {
                    if let Some(parts) = mime::split_multipart(e.body, b) {
                        multipart = Some((parts, ct.value == "multipart/digest"));
                    }
                }
            }
            Some(ct) if !attachment && (ct.value == "text/html" || ct.value == "text/plain") => {
                leaf = self.leaf(ct, field("content-transfer-encoding").as_deref(), e.body);
            }
            _ => {}
        }

        self.header(&fields, top, leaf.as_ref(), out);
        out.extend_from_slice(e.sep);
        match (leaf, multipart) {
            (Some(leaf), _) => out.extend_from_slice(&leaf.body),
            (None, Some((parts, digest))) => {
                let mut last = 0;
                for r in parts {
                    out.extend_from_slice(&e.body[last..r.start]);
                    self.entity(&e.body[r.clone()], digest, depth + 1, false, out);
                    last = r.end;
                }
                out.extend_from_slice(&e.body[last..]);
            }
            (None, None) => out.extend_from_slice(e.body),
        }
    }

    /// The header block, with the changes a rewritten leaf needs and, at
    /// the top, the unsubscribe fields. Fields not changed are copied as
    /// they are, folding included.
    fn header(&mut self, fields: &[Field<'_>], top: bool, leaf: Option<&Leaf>, out: &mut Vec<u8>) {
        let add_unsubscribe = top && self.opts.unsubscribe;
        let eol = self.eol;
        let new_cte = leaf.and_then(|l| l.cte);
        let new_charset = leaf.and_then(|l| l.charset);
        let mut cte_written = false;
        let mut ct_written = false;
        for f in fields {
            if add_unsubscribe && (f.is("list-unsubscribe") || f.is("list-unsubscribe-post")) {
                continue;
            }
            if let (Some(cte), true) = (new_cte, f.is("content-transfer-encoding")) {
                push_field(out, eol, "Content-Transfer-Encoding", cte.name());
                cte_written = true;
                continue;
            }
            if let (Some(cs), true, Some(ct)) = (
                new_charset,
                f.is("content-type"),
                ContentType::parse(&f.value()),
            ) {
                let mut v = ct.value.clone();
                for (name, value) in ct.params.iter().filter(|(n, _)| n != "charset") {
                    v.push_str(&format!("; {name}={}", quote(value)));
                }
                v.push_str(&format!("; charset={cs}"));
                push_field(out, eol, "Content-Type", &v);
                ct_written = true;
                continue;
            }
            out.extend_from_slice(f.raw);
        }
        if let (Some(cte), false) = (new_cte, cte_written) {
            push_field(out, eol, "Content-Transfer-Encoding", cte.name());
        }
        if let (Some(cs), false) = (new_charset, ct_written) {
            push_field(
                out,
                eol,
                "Content-Type",
                &format!("text/plain; charset={cs}"),
            );
        }
        if add_unsubscribe {
            let url = self.unsubscribe_url();
            let mut v = format!("<{url}>");
            if let Some(addr) = &self.opts.unsubscribe_mailto {
                let token = self.unsubscribe_token.as_deref().unwrap_or_default();
                // Folded after the comma, to keep lines short.
                v.push_str(&format!(
                    ",{} <mailto:{addr}?subject=unsubscribe:{token}>",
                    String::from_utf8_lossy(eol)
                ));
            }
            push_field(out, eol, "List-Unsubscribe", &v);
            push_field(
                out,
                eol,
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click",
            );
        }
    }

    /// Rewrite a text/html or text/plain part's body, or `None` to keep it.
    fn leaf(&mut self, ct: &ContentType, cte: Option<&str>, body: &[u8]) -> Option<Leaf> {
        let html = ct.value == "text/html";
        let Some(cte_kind) = Cte::parse(cte) else {
            self.note(Note::UnknownTransferEncoding(
                cte.unwrap_or_default().to_string(),
            ));
            return None;
        };
        let Some(content) = codec::decode(cte_kind, body) else {
            self.note(Note::BadTransferEncoding);
            return None;
        };
        let label = ct.param("charset");
        let (rewritten, charset) = match text::plan(label, html) {
            text::Plan::InPlace(enc) => (self.content(html, &content, enc)?, None),
            text::Plan::Transcode { from, back } => {
                let Some(decoded) = text::decode(from, &content) else {
                    self.note(Note::UndecodableCharset(
                        label.unwrap_or_default().to_string(),
                    ));
                    return None;
                };
                let meta = if back.is_none() { Some("utf-8") } else { None };
                let new = self.content_utf8(html, decoded.as_bytes(), meta)?;
                let new = String::from_utf8(new).ok()?;
                match back.and_then(|b| text::encode(b, &new)) {
                    Some(bytes) => (bytes, None),
                    None => (new.into_bytes(), Some("utf-8")),
                }
            }
            text::Plan::Skip => {
                self.note(Note::UndecodableCharset(
                    label.unwrap_or_default().to_string(),
                ));
                return None;
            }
        };
        let (body, used) = codec::encode(cte_kind, rewritten, body, self.eol);
        Some(Leaf {
            body,
            cte: (used != cte_kind).then_some(used),
            charset,
        })
    }

    fn content(&mut self, html: bool, content: &[u8], enc: &'static Encoding) -> Option<Vec<u8>> {
        if html {
            self.html(content, enc, None)
        } else {
            text::rewrite(self, content, enc)
        }
    }

    /// Like [`Self::content`] on decoded text; `None` (keep the part in its
    /// charset) when nothing changed.
    fn content_utf8(
        &mut self,
        html: bool,
        content: &[u8],
        meta_charset: Option<&str>,
    ) -> Option<Vec<u8>> {
        if html {
            self.html(content, encoding_rs::UTF_8, meta_charset)
        } else {
            text::rewrite(self, content, encoding_rs::UTF_8)
        }
    }

    /// An HTML part through `lol_html`; if it gives up, the part is left
    /// as it was and the links it had numbered are forgotten.
    fn html(
        &mut self,
        content: &[u8],
        enc: &'static Encoding,
        meta_charset: Option<&str>,
    ) -> Option<Vec<u8>> {
        let want_pixel = self.opts.track_opens && !self.pixel_placed;
        let links_before = self.links.len();
        match html::rewrite(self, content, enc, meta_charset, want_pixel) {
            Ok(out) => out,
            Err(e) => {
                self.links.truncate(links_before);
                self.note(Note::HtmlNotRewritten(e));
                None
            }
        }
    }
}

/// Pins the closure's signature to the one `url` wants.
fn query_encoder<F: for<'s> Fn(&'s str) -> std::borrow::Cow<'s, [u8]>>(f: F) -> F {
    f
}

/// Append a header field, first ending the previous line if the sender's
/// header block did not.
fn push_field(out: &mut Vec<u8>, eol: &[u8], name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(eol);
}

/// A parameter value as a token when it is one, else a quoted string.
fn quote(v: &str) -> String {
    let token = !v.is_empty()
        && v.bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b));
    if token {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}
