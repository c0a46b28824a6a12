//! Header blocks and addresses, read leniently.
//!
//! Used for everything that is "header-shaped": the report's own headers,
//! `message/delivery-status` field groups, `message/feedback-report`,
//! `text/rfc822-headers` and original headers quoted in plain-text bounces.
//! One tolerant reader for all of them, with explicit caps.

/// Headers kept per block; the rest are ignored.
const MAX_HEADERS: usize = 400;
/// Bytes kept per unfolded header value.
const MAX_VALUE: usize = 8 * 1024;

/// An ordered list of `(lowercased name, value)` pairs, values unfolded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String, String)>,
}

impl Headers {
    /// Reads header lines from the start of `text` up to the first blank
    /// line (or the first line that is neither a field nor a continuation).
    /// Returns the headers and the byte offset where the body starts.
    pub fn parse(text: &str) -> (Headers, usize) {
        let mut h = Headers::default();
        let mut pos = 0;
        for line in text.split_inclusive('\n') {
            let l = line.trim_end_matches('\n');
            if l.trim().is_empty() {
                pos += line.len();
                break;
            }
            if l.starts_with([' ', '\t']) {
                if let Some(last) = h.fields.last_mut() {
                    if last.2.len() < MAX_VALUE {
                        last.2.push(' ');
                        last.2.push_str(l.trim());
                        truncate(&mut last.2, MAX_VALUE);
                    }
                    pos += line.len();
                    continue;
                }
                break;
            }
            match field_name(l) {
                Some((name, value)) => {
                    if h.fields.len() < MAX_HEADERS {
                        let mut v = value.trim().to_string();
                        truncate(&mut v, MAX_VALUE);
                        h.fields
                            .push((name.to_ascii_lowercase(), name.to_string(), v));
                    }
                }
                None => break,
            }
            pos += line.len();
        }
        (h, pos)
    }

    /// The first value of `name` (case-insensitive), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.0.eq_ignore_ascii_case(name))
            .map(|f| f.2.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.0.eq_ignore_ascii_case(name))
            .map(|f| f.2.as_str())
    }

    /// `(name as written, value)` for each field.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|f| (f.1.as_str(), f.2.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when no field was read.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// `Name: value` with a plausible field name.
pub fn field_name(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = &line[..colon];
    let name_t = name.trim_end();
    if name_t.is_empty()
        || name_t.len() > 76
        || !name_t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    {
        return None;
    }
    Some((name_t, &line[colon + 1..]))
}

/// True when `text` starts with something that reads as a header block:
/// at least two fields before the first blank line.
pub fn looks_like_headers(text: &str) -> bool {
    let (h, _) = Headers::parse(text);
    h.len() >= 2
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&*+-/=?^_{|}~.".contains(&c)
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// Every address-looking token in `text`, in order, with its byte span,
/// lowercased. Lenient on purpose (bounces quote addresses in every way),
/// but each result passes [`is_valid_address`].
pub fn find_addresses(text: &str) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = b[from..].iter().position(|&c| c == b'@') {
        let at = from + p;
        let mut s = at;
        while s > 0 && is_local_char(b[s - 1]) && at - s < 128 {
            s -= 1;
        }
        let mut e = at + 1;
        while e < b.len() && is_domain_char(b[e]) && e - at < 256 {
            e += 1;
        }
        let mut local = text[s..at].trim_start_matches(['.', '/', '=', '-']);
        // A quoted local part: "a..b"@example.org
        if local.is_empty() && at > 0 && b[at - 1] == b'"' {
            let mut from_q = at.saturating_sub(66);
            while !text.is_char_boundary(from_q) {
                from_q += 1;
            }
            if let Some(q) = text[from_q..at - 1].rfind('"') {
                let q = from_q + q;
                let inner = &text[q + 1..at - 1];
                if !inner.is_empty() && !inner.contains(['\n', '"', '<', '>']) {
                    local = &text[q..at];
                }
            }
        }
        // Exchange's "SMTP=a@b" and similar routing prefixes.
        if let Some(eq) = local.find('=') {
            let prefix = local[..eq].to_ascii_lowercase();
            if prefix == "smtp" || prefix == "rfc822" {
                local = &local[eq + 1..];
            }
        }
        let s = at - local.len();
        let domain = text[at + 1..e].trim_end_matches(['.', '-']);
        let e = at + 1 + domain.len();
        let addr = format!("{local}@{domain}").to_ascii_lowercase();
        if is_valid_address(&addr) {
            out.push((s, e, addr));
        }
        from = e.max(at + 1);
        if out.len() >= 1000 {
            break;
        }
    }
    out
}

/// The first address in a header value such as `rfc822; <a@b.example>` or
/// `"Name" <a@b.example>`.
pub fn first_address(value: &str) -> Option<String> {
    find_addresses(value).into_iter().next().map(|a| a.2)
}

/// `local@domain` with a non-empty local part and a dotted domain whose
/// labels are non-empty.
pub fn is_valid_address(addr: &str) -> bool {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    let quoted = local.len() > 2 && local.starts_with('"') && local.ends_with('"');
    if local.is_empty()
        || local.len() > 128
        || !quoted && (local.starts_with('.') || local.ends_with('.'))
    {
        return false;
    }
    if !domain.contains('.') || domain.len() > 255 {
        return false;
    }
    domain.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    }) && domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().any(|c| c.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_stops_at_blank_line() {
        let (h, off) = Headers::parse("A: 1\nB: two\n  lines\n\nbody");
        assert_eq!(h.get("b"), Some("two lines"));
        assert_eq!(&"A: 1\nB: two\n  lines\n\nbody"[off..], "body");
    }

    #[test]
    fn finds_quoted_addresses() {
        let a = find_addresses("550 5.1.1 <Kijitora@Example.JP>... User unknown; x@y");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].2, "kijitora@example.jp");
        assert_eq!(
            first_address("rfc822; 'a.b@c.example'").unwrap(),
            "a.b@c.example"
        );
    }
}
