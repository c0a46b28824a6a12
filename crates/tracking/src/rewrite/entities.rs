//! Character references in attribute values, decoded the way a browser
//! decodes an `href` (WHATWG HTML §13.2.5.72–80, attribute-value mode), so
//! the stored original URL is the one the browser would have followed.
//!
//! Numeric references are decoded in full. Named references use a short
//! table of the names that turn up in URLs; in attribute values a name
//! without its `;` that is followed by `=` or an alphanumeric stays literal
//! (so `?a=1&copy=2` keeps `&copy=2`, as browsers do). Unknown names are
//! left as written, which for a URL is the safe direction: the redirect
//! then goes to the literal text, as a browser that did not know the name
//! would go.

use std::borrow::Cow;

/// Names (without `&`) and their characters. `legacy` names may appear
/// without a trailing `;` (the spec's list of such names includes all of
/// these that are marked true).
const NAMED: &[(&str, char, bool)] = &[
    ("amp", '&', true),
    ("lt", '<', true),
    ("gt", '>', true),
    ("quot", '"', true),
    ("apos", '\'', false),
    ("nbsp", '\u{a0}', true),
    ("sol", '/', false),
    ("colon", ':', false),
    ("quest", '?', false),
    ("equals", '=', false),
    ("num", '#', false),
    ("percnt", '%', false),
    ("period", '.', false),
    ("lowbar", '_', false),
    ("hyphen", '\u{2010}', false),
    ("plus", '+', false),
    ("commat", '@', false),
    ("excl", '!', false),
    ("dollar", '$', false),
    ("tilde", '\u{2dc}', false),
    ("copy", '\u{a9}', true),
    ("reg", '\u{ae}', true),
];

/// Windows-1252 meanings of references to C1 code points (§13.2.5.80).
const C1: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

pub(crate) fn decode_attribute(v: &str) -> Cow<'_, str> {
    if !v.contains('&') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        match reference(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference starting right after `&` stands for, and how
/// many bytes of `s` it used.
fn reference(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let (radix, start) = match b.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || (radix == 16 && c.is_ascii_hexdigit()))
            .count();
        if digits == 0 {
            return None;
        }
        let mut used = start + digits;
        let n = u32::from_str_radix(&s[start..used].chars().take(8).collect::<String>(), radix)
            .unwrap_or(u32::MAX);
        let n = if digits > 8 { u32::MAX } else { n };
        if b.get(used) == Some(&b';') {
            used += 1;
        }
        let c = match n {
            0 => '\u{fffd}',
            0x80..=0x9F => char::from_u32(C1[(n - 0x80) as usize]).unwrap_or('\u{fffd}'),
            _ => char::from_u32(n).unwrap_or('\u{fffd}'),
        };
        return Some((c, used));
    }
    for &(name, c, legacy) in NAMED {
        if let Some(after) = s.strip_prefix(name) {
            if after.starts_with(';') {
                return Some((c, name.len() + 1));
            }
            let next = after.bytes().next();
            let blocks = next.is_some_and(|n| n == b'=' || n.is_ascii_alphanumeric());
            if legacy && !blocks {
                return Some((c, name.len()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_browser_in_attributes() {
        let cases = [
            (
                "https://x.example/?a=1&amp;b=2",
                "https://x.example/?a=1&b=2",
            ),
            ("https://x.example/?a=1&b=2", "https://x.example/?a=1&b=2"),
            (
                "https://x.example/?a=1&copy=2",
                "https://x.example/?a=1&copy=2",
            ),
            (
                "https://x.example/?a=1&amp=2",
                "https://x.example/?a=1&amp=2",
            ),
            (
                "https://x.example/?q=&quot;x&quot",
                "https://x.example/?q=\"x\"",
            ),
            ("&#104;ttps&#x3A;//x.example/&#x2F;", "https://x.example//"),
            (
                "https://x.example/&#128;&#0;",
                "https://x.example/\u{20ac}\u{fffd}",
            ),
            (
                "https://x.example/&unknown;&",
                "https://x.example/&unknown;&",
            ),
            ("&#99999999999;", "\u{fffd}"),
        ];
        for (input, want) in cases {
            assert_eq!(decode_attribute(input), want, "{input}");
        }
    }
}
