//! Charsets, and rewriting text/plain: bare URLs and the placeholder.

use encoding_rs::{
    Encoding, BIG5, GB18030, GBK, ISO_2022_JP, REPLACEMENT, SHIFT_JIS, UTF_8, WINDOWS_1252,
};

use std::ops::Range;

use super::Ctx;

/// How to treat a part's charset (see the module documentation of
/// [`super`] for why).
pub(crate) enum Plan {
    /// Rewrite the bytes as they are, reading them in this encoding.
    InPlace(&'static Encoding),
    /// Decode to UTF-8 first; encode back with `back`, or stay UTF-8.
    Transcode {
        from: &'static Encoding,
        back: Option<&'static Encoding>,
    },
    Skip,
}

pub(crate) fn plan(label: Option<&str>, html: bool) -> Plan {
    let Some(label) = label else {
        // RFC 2045 §5.2: text defaults to US-ASCII. HTML without a charset
        // is read as UTF-8 (any ASCII-compatible choice keeps its bytes).
        return Plan::InPlace(if html { UTF_8 } else { WINDOWS_1252 });
    };
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(e) if e == REPLACEMENT => Plan::Skip,
        Some(e) if e.is_ascii_compatible() => Plan::InPlace(e),
        Some(e) if e == ISO_2022_JP => Plan::Transcode {
            from: e,
            back: Some(e),
        },
        Some(e) => Plan::Transcode {
            from: e,
            back: None,
        },
        None => Plan::InPlace(WINDOWS_1252),
    }
}

/// Strict decoding (a malformed part is left alone rather than mangled).
pub(crate) fn decode(from: &'static Encoding, bytes: &[u8]) -> Option<String> {
    let bytes = match Encoding::for_bom(bytes) {
        Some((e, n)) if e == from => &bytes[n..],
        _ => bytes,
    };
    from.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
}

/// Encode back, or `None` if some character has no encoding there.
pub(crate) fn encode(to: &'static Encoding, text: &str) -> Option<Vec<u8>> {
    let (bytes, _, unmappable) = to.encode(text);
    (!unmappable).then(|| bytes.into_owned())
}

/// Character starts in encodings whose trailing bytes can look like ASCII
/// (Shift_JIS, Big5, GBK, gb18030): a match found by byte search is only
/// real where a character starts. Queries must come in increasing order,
/// so a whole part costs one pass.
pub(crate) struct Starts {
    kind: Multi,
    next: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Multi {
    No,
    ShiftJis,
    Big5,
    Gb,
}

impl Starts {
    pub(crate) fn new(enc: &'static Encoding) -> Self {
        let kind = if enc == SHIFT_JIS {
            Multi::ShiftJis
        } else if enc == BIG5 {
            Multi::Big5
        } else if enc == GBK || enc == GB18030 {
            Multi::Gb
        } else {
            Multi::No
        };
        Self { kind, next: 0 }
    }

    pub(crate) fn is_start(&mut self, bytes: &[u8], at: usize) -> bool {
        if self.kind == Multi::No {
            return true;
        }
        while self.next < at {
            let b = bytes[self.next];
            self.next += match self.kind {
                Multi::ShiftJis if matches!(b, 0x81..=0x9F | 0xE0..=0xFC) => 2,
                Multi::Big5 if matches!(b, 0x81..=0xFE) => 2,
                Multi::Gb if matches!(b, 0x81..=0xFE) => {
                    if bytes.get(self.next + 1).is_some_and(u8::is_ascii_digit) {
                        4
                    } else {
                        2
                    }
                }
                _ => 1,
            };
        }
        self.next == at
    }
}

/// Where the placeholder is (also %-encoded, as editors write it in an
/// href), in order.
pub(crate) fn placeholders(bytes: &[u8], enc: &'static Encoding) -> Vec<Range<usize>> {
    const NAME: &[u8] = b"tidings_unsubscribe_url";
    let mut starts = Starts::new(enc);
    let mut spans: Vec<Range<usize>> = Vec::new();
    for p in memchr::memmem::find_iter(bytes, NAME) {
        let after = p + NAME.len();
        let around = |before: usize, open: &[u8], close: &[u8]| {
            p >= before
                && bytes[p - before..p].eq_ignore_ascii_case(open)
                && bytes
                    .get(after..after + close.len())
                    .is_some_and(|c| c.eq_ignore_ascii_case(close))
        };
        let span = if around(2, b"{{", b"}}") {
            p - 2..after + 2
        } else if around(6, b"%7B%7B", b"%7D%7D") {
            p - 6..after + 6
        } else {
            continue;
        };
        if spans.last().is_some_and(|l| span.start < l.end) || !starts.is_start(bytes, span.start) {
            continue;
        }
        spans.push(span);
    }
    spans
}

/// `bytes` with each span replaced by `with`.
fn splice(bytes: &[u8], spans: &[Range<usize>], with: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + spans.len() * with.len());
    let mut last = 0;
    for s in spans {
        out.extend_from_slice(&bytes[last..s.start]);
        out.extend_from_slice(with.as_bytes());
        last = s.end;
    }
    out.extend_from_slice(&bytes[last..]);
    out
}

/// Rewrite a text/plain body: placeholder, then bare http(s) URLs.
pub(crate) fn rewrite(
    ctx: &mut Ctx<'_>,
    content: &[u8],
    enc: &'static Encoding,
) -> Option<Vec<u8>> {
    let spans = placeholders(content, enc);
    let replaced = (!spans.is_empty()).then(|| splice(content, &spans, &ctx.unsubscribe_url()));
    let input = replaced.as_deref().unwrap_or(content);
    let linked = if ctx.opts.track_clicks {
        rewrite_urls(ctx, input, enc)
    } else {
        None
    };
    linked.or(replaced)
}

/// Find `http://` and `https://` URLs (case-insensitive) not glued to a
/// preceding letter or digit; a URL runs to whitespace, a control or
/// non-ASCII byte, or one of `<>"`; trailing `.,;:!?'` and unbalanced
/// closing brackets are punctuation, not URL (as GitHub's autolinker and
/// most mail clients decide).
fn rewrite_urls(ctx: &mut Ctx<'_>, input: &[u8], enc: &'static Encoding) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    let mut from = 0;
    let mut starts = Starts::new(enc);
    while let Some(p) = memchr::memchr2(b'h', b'H', &input[from..]) {
        let at = from + p;
        from = at + 1;
        let rest = &input[at..];
        let scheme = if starts_with_ci(rest, b"https://") {
            8
        } else if starts_with_ci(rest, b"http://") {
            7
        } else {
            continue;
        };
        if at > 0 && input[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let end = url_end(input, at);
        if end <= at + scheme || !starts.is_start(input, at) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&input[at..end]) else {
            continue;
        };
        from = end;
        let Some(tracked) = ctx.click_url(text, enc) else {
            continue;
        };
        let o = out.get_or_insert_with(|| Vec::with_capacity(input.len() + 1024));
        o.extend_from_slice(&input[last..at]);
        o.extend_from_slice(tracked.as_bytes());
        last = end;
    }
    let mut o = out?;
    o.extend_from_slice(&input[last..]);
    Some(o)
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn url_end(input: &[u8], at: usize) -> usize {
    let mut end = at
        + input[at..]
            .iter()
            .position(|&b| b <= b' ' || b >= 0x7f || b == b'<' || b == b'>' || b == b'"')
            .unwrap_or(input.len() - at);
    loop {
        let Some(&last) = input[..end].last() else {
            return end;
        };
        let url = &input[at..end];
        let unbalanced = |open: u8, close: u8| {
            last == close
                && url.iter().filter(|&&b| b == close).count()
                    > url.iter().filter(|&&b| b == open).count()
        };
        if b".,;:!?'*".contains(&last) || unbalanced(b'(', b')') || unbalanced(b'[', b']') {
            end -= 1;
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::UNSUBSCRIBE_PLACEHOLDER;

    fn url_at(s: &str) -> &str {
        let at = s.find("http").unwrap();
        &s[at..url_end(s.as_bytes(), at)]
    }

    #[test]
    fn urls_end_before_punctuation_and_unbalanced_brackets() {
        let cases = [
            ("see https://x.example/a.", "https://x.example/a"),
            (
                "(https://x.example/wiki/A_(b))",
                "https://x.example/wiki/A_(b)",
            ),
            ("[https://x.example/]", "https://x.example/"),
            (
                "<https://x.example/a?b=c&d=e>",
                "https://x.example/a?b=c&d=e",
            ),
            ("\"https://x.example/q\"", "https://x.example/q"),
            ("https://x.example/é", "https://x.example/"),
            ("https://x.example/a?!.,;:'*", "https://x.example/a"),
        ];
        for (text, want) in cases {
            assert_eq!(url_at(text), want, "{text}");
        }
    }

    #[test]
    fn shift_jis_trail_bytes_are_not_ascii() {
        // 0x82 0x68 is one character whose trail byte is `h`; "ttp://"
        // after it is not the start of a URL.
        let bytes = b"\x82\x68ttp://x.example/ http://y.example/";
        let mut starts = Starts::new(SHIFT_JIS);
        assert!(!starts.is_start(bytes, 1));
        assert!(starts.is_start(bytes, 18));
        let mut utf8 = Starts::new(UTF_8);
        assert!(utf8.is_start(bytes, 1));
    }

    #[test]
    fn placeholders_in_every_spelling() {
        assert_eq!(UNSUBSCRIBE_PLACEHOLDER, "{{tidings_unsubscribe_url}}");
        let text = b"a {{tidings_unsubscribe_url}} b %7b%7Btidings_unsubscribe_url%7D%7d c {tidings_unsubscribe_url}";
        let spans = placeholders(text, UTF_8);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            splice(text, &spans, "U"),
            b"a U b U c {tidings_unsubscribe_url}"
        );
    }
}
