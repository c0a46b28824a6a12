//! Just enough MIME to find the parts worth rewriting, on the raw bytes.
//!
//! Everything here returns slices of the input, so that whatever is not
//! rewritten can be copied out exactly as it came in: header fields with
//! their folding, preambles, epilogues, delimiter lines with their transport
//! padding, and parts of any type.

use std::ops::Range;

/// An entity split into its header block, the empty line, and its body.
/// `head`, `sep` and `body` are consecutive and cover the whole input.
pub(crate) struct Entity<'a> {
    pub head: &'a [u8],
    pub sep: &'a [u8],
    pub body: &'a [u8],
}

/// Split at the first empty line (CRLF or bare LF). Without one, it is all
/// header; an entity that begins with an empty line has no header fields.
pub(crate) fn split_entity(raw: &[u8]) -> Entity<'_> {
    let sep_at = |i: usize| -> Option<usize> {
        match &raw[i..] {
            [b'\r', b'\n', ..] => Some(2),
            [b'\n', ..] => Some(1),
            _ => None,
        }
    };
    if let Some(n) = sep_at(0) {
        return Entity {
            head: &[],
            sep: &raw[..n],
            body: &raw[n..],
        };
    }
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'\n', &raw[from..]) {
        let next = from + p + 1;
        if next >= raw.len() {
            break;
        }
        if let Some(n) = sep_at(next) {
            return Entity {
                head: &raw[..next],
                sep: &raw[next..next + n],
                body: &raw[next + n..],
            };
        }
        from = next;
    }
    Entity {
        head: raw,
        sep: &[],
        body: &[],
    }
}

/// One header field with its continuation lines and line break.
pub(crate) struct Field<'a> {
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The name, or empty for a line that is not a field (kept verbatim).
    pub fn name(&self) -> &'a [u8] {
        match memchr::memchr(b':', self.raw) {
            Some(c) => trim(&self.raw[..c]),
            None => &[],
        }
    }

    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value with folding removed and surrounding whitespace trimmed.
    pub fn value(&self) -> String {
        let v = match memchr::memchr(b':', self.raw) {
            Some(c) => &self.raw[c + 1..],
            None => &[],
        };
        let unfolded: Vec<u8> = v
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        String::from_utf8_lossy(trim(&unfolded)).into_owned()
    }
}

/// Header fields in order. Continuation lines (starting with space or tab)
/// belong to the field before them.
pub(crate) fn fields(head: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let end = memchr::memchr(b'\n', &head[i..]).map_or(head.len(), |p| i + p + 1);
        let continuation = matches!(head[i], b' ' | b'\t');
        if !continuation && i > start {
            out.push(Field {
                raw: &head[start..i],
            });
            start = i;
        }
        i = end;
    }
    if head.len() > start {
        out.push(Field {
            raw: &head[start..],
        });
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e]
}

/// A parsed `Content-Type` (or `Content-Disposition`) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// `type/subtype`, lower-cased (for a disposition: the disposition).
    pub value: String,
    /// Parameter names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `type/subtype; params` as RFC 2045 §5.1 writes it, with comments
    /// skipped. `None` when there is no valid type/subtype.
    pub fn parse(v: &str) -> Option<Self> {
        let mut p = Cursor {
            s: v.as_bytes(),
            i: 0,
        };
        p.cfws();
        let value = p.token()?.to_ascii_lowercase();
        let value = if p.eat(b'/') {
            let sub = p.token()?.to_ascii_lowercase();
            format!("{value}/{sub}")
        } else {
            value
        };
        let mut params = Vec::new();
        loop {
            p.cfws();
            if !p.eat(b';') {
                break;
            }
            p.cfws();
            let Some(name) = p.token() else {
                continue;
            };
            p.cfws();
            if !p.eat(b'=') {
                continue;
            }
            p.cfws();
            let val = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            params.push((name.to_ascii_lowercase(), val));
        }
        Some(Self { value, params })
    }

    pub fn is_multipart(&self) -> bool {
        self.value.starts_with("multipart/")
    }
}

struct Cursor<'s> {
    s: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    /// Whitespace and (nested) comments.
    fn cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.i += 1,
                _ if depth > 0 || b.is_ascii_whitespace() => {}
                _ => return,
            }
            self.i += 1;
        }
    }

    /// An RFC 2045 token (lenient: any printable except tspecials).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The parts of a multipart body: where each part's content lies. Bytes
/// outside these ranges (preamble, delimiter lines, the line break before
/// each delimiter, epilogue) are not part of any part.
pub(crate) fn split_multipart(body: &[u8], boundary: &str) -> Option<Vec<Range<usize>>> {
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let needle = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut parts = Vec::new();
    // Start of the content of the part being read, once the first
    // delimiter has been seen.
    let mut open: Option<usize> = None;
    let mut from = 0;
    while let Some(p) = finder.find(&body[from..]) {
        let at = from + p;
        from = at + needle.len();
        if at > 0 && body[at - 1] != b'\n' {
            continue;
        }
        let mut j = at + needle.len();
        let close = body[j..].starts_with(b"--");
        if close {
            j += 2;
        }
        while matches!(body.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        let line_end = match &body[j..] {
            [] => j,
            [b'\n', ..] => j + 1,
            [b'\r', b'\n', ..] => j + 2,
            // `--boundary` followed by more characters: a different
            // (longer) boundary, or text that merely looks like one.
            _ => continue,
        };
        if let Some(start) = open {
            parts.push(start..content_end(body, at).max(start));
        }
        if close {
            return Some(parts);
        }
        open = Some(line_end);
        from = line_end;
    }
    // No closing delimiter: the last part runs to the end (as every
    // lenient reader assumes).
    if let Some(start) = open {
        parts.push(start..body.len());
    }
    (!parts.is_empty()).then_some(parts)
}

/// The line break before a delimiter belongs to the delimiter (RFC 2046
/// §5.1.1), so a part ends before it.
fn content_end(body: &[u8], delimiter_at: usize) -> usize {
    let mut e = delimiter_at;
    if e > 0 && body[e - 1] == b'\n' {
        e -= 1;
        if e > 0 && body[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_split_at_the_first_empty_line() {
        let e = split_entity(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore");
        assert_eq!(e.head, b"A: 1\r\nB: 2\r\n");
        assert_eq!(e.sep, b"\r\n");
        assert_eq!(e.body, b"body\r\n\r\nmore");
        let e = split_entity(b"\nbody");
        assert_eq!(
            (e.head, e.sep, e.body),
            (&b""[..], &b"\n"[..], &b"body"[..])
        );
        let e = split_entity(b"A: 1\n");
        assert_eq!(
            (e.head, e.sep, e.body),
            (&b"A: 1\n"[..], &b""[..], &b""[..])
        );
    }

    #[test]
    fn fields_keep_their_folding() {
        let f = fields(b"Content-Type: text/html;\r\n\tcharset=\"utf-8\"\r\nX: y\r\n");
        assert_eq!(f.len(), 2);
        assert!(f[0].is("content-type"));
        assert_eq!(f[0].value(), "text/html;\tcharset=\"utf-8\"");
        assert_eq!(f[1].raw, b"X: y\r\n");
    }

    #[test]
    fn content_types_parse_with_quotes_and_comments() {
        let ct = ContentType::parse(
            "Multipart/Mixed (a comment); boundary=\"=_a b\\\"c\"; CHARSET=UTF-8 ;bad",
        )
        .unwrap();
        assert_eq!(ct.value, "multipart/mixed");
        assert_eq!(ct.param("boundary"), Some("=_a b\"c"));
        assert_eq!(ct.param("charset"), Some("UTF-8"));
        assert!(ContentType::parse("").is_none());
        assert_eq!(
            ContentType::parse("attachment; filename=a.pdf")
                .unwrap()
                .value,
            "attachment"
        );
    }

    #[test]
    fn multipart_parts_exclude_the_line_break_before_delimiters() {
        let body = b"preamble\r\n--b\r\nA\r\n--b  \r\n\r\nB\r\n\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, "b").unwrap();
        let texts: Vec<&[u8]> = parts.iter().map(|r| &body[r.clone()]).collect();
        assert_eq!(texts, [&b"A"[..], &b"\r\nB\r\n"[..]]);
    }

    #[test]
    fn longer_boundaries_and_mid_line_matches_are_not_delimiters() {
        let body = b"--b\nx --b\n--bb\ny\n--b--\n";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(&body[parts[0].clone()], b"x --b\n--bb\ny");
        let unterminated = b"--b\nlast";
        let parts = split_multipart(unterminated, "b").unwrap();
        assert_eq!(&unterminated[parts[0].clone()], b"last");
        assert!(split_multipart(b"no delimiter", "b").is_none());
    }
}
