//! Content-Transfer-Encodings (RFC 2045 §6): decoding a part to rewrite it,
//! and encoding the result again.

use std::borrow::Cow;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// The transfer encodings a rewritable part can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cte {
    /// `7bit`, `8bit`, `binary` or none: the body is the content.
    Identity {
        seven_bit: bool,
    },
    QuotedPrintable,
    Base64,
}

impl Cte {
    /// `None` for encodings this crate does not rewrite (`x-uuencode`, ...).
    pub fn parse(v: Option<&str>) -> Option<Self> {
        let v = v.map(|v| v.trim().to_ascii_lowercase());
        match v.as_deref() {
            None | Some("" | "7bit") => Some(Cte::Identity { seven_bit: true }),
            Some("8bit" | "binary") => Some(Cte::Identity { seven_bit: false }),
            Some("quoted-printable") => Some(Cte::QuotedPrintable),
            Some("base64") => Some(Cte::Base64),
            Some(_) => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cte::Identity { seven_bit: true } => "7bit",
            Cte::Identity { seven_bit: false } => "8bit",
            Cte::QuotedPrintable => "quoted-printable",
            Cte::Base64 => "base64",
        }
    }
}

/// The content of a body, or `None` when it is not valid in its encoding.
pub(crate) fn decode(cte: Cte, body: &[u8]) -> Option<Cow<'_, [u8]>> {
    match cte {
        Cte::Identity { .. } => Some(Cow::Borrowed(body)),
        Cte::QuotedPrintable => Some(Cow::Owned(qp_decode(body))),
        Cte::Base64 => b64_decode(body).map(Cow::Owned),
    }
}

/// The longest line SMTP carries (RFC 5321 §4.5.3.1.6), without its CRLF.
const MAX_LINE: usize = 998;
/// Encoded lines, without their line break (RFC 2045 §6.7 (5), §6.8).
const ENCODED_LINE: usize = 76;

/// Encode `content` as `cte` with `eol` line breaks. An identity encoding
/// whose content no longer fits it (an over-long line, or 8-bit bytes in a
/// `7bit` part) becomes quoted-printable; the encoding used is returned.
pub(crate) fn encode(
    cte: Cte,
    content: Vec<u8>,
    original_body: &[u8],
    eol: &[u8],
) -> (Vec<u8>, Cte) {
    match cte {
        Cte::Identity { seven_bit } if fits_identity(&content, seven_bit) => (content, cte),
        Cte::Identity { .. } | Cte::QuotedPrintable => {
            (qp_encode(&content, eol), Cte::QuotedPrintable)
        }
        Cte::Base64 => {
            let mut out = b64_encode(&content, eol);
            // Keep whatever blank lines the sender had after the data.
            let tail = original_body.len()
                - original_body
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(0, |p| p + 1);
            out.extend_from_slice(&original_body[original_body.len() - tail..]);
            (out, cte)
        }
    }
}

fn fits_identity(content: &[u8], seven_bit: bool) -> bool {
    if (seven_bit && !content.is_ascii()) || memchr::memchr(0, content).is_some() {
        return false;
    }
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', content) {
        // The line, with a CR if there is one.
        if nl - start > MAX_LINE + 1 {
            return false;
        }
        start = nl + 1;
    }
    content.len() - start <= MAX_LINE
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Raw text before a line break, without the CR and the trailing
/// whitespace that RFC 2045 §6.7 (3) says a decoder must drop.
fn line_text(run: &[u8]) -> (&[u8], bool) {
    let (run, cr) = match run {
        [t @ .., b'\r'] => (t, true),
        t => (t, false),
    };
    let end = run
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    (&run[..end], cr)
}

/// RFC 2045 §6.7 decoding, lenient as the robustness note there asks:
/// malformed `=` sequences are kept as they are, trailing whitespace on a
/// line is dropped, soft line breaks are removed, hard ones kept as found.
pub(crate) fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let Some(off) = memchr::memchr2(b'=', b'\n', &body[i..]) else {
            out.extend_from_slice(line_text(&body[i..]).0);
            break;
        };
        let j = i + off;
        if body[j] == b'\n' {
            let (text, cr) = line_text(&body[i..j]);
            out.extend_from_slice(text);
            out.extend_from_slice(if cr { b"\r\n" } else { b"\n" });
            i = j + 1;
            continue;
        }
        out.extend_from_slice(&body[i..j]);
        if let (Some(h), Some(l)) = (
            body.get(j + 1).and_then(|&h| hex(h)),
            body.get(j + 2).and_then(|&l| hex(l)),
        ) {
            out.push(h << 4 | l);
            i = j + 3;
            continue;
        }
        // A soft line break: `=`, optional whitespace, then the break.
        let mut k = j + 1;
        while matches!(body.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        match &body[k..] {
            [b'\r', b'\n', ..] => i = k + 2,
            [b'\n', ..] => i = k + 1,
            [] => i = k,
            _ => {
                out.push(b'=');
                i = j + 1;
            }
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bytes that quoted-printable may carry as themselves (RFC 2045 §6.7 (2)).
const LITERAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 33;
    while b <= 126 {
        t[b] = b != b'=' as usize;
        b += 1;
    }
    t
};

/// [`LITERAL`] plus space and tab: what may stand as itself anywhere but at
/// the end of a line.
const INNER: [bool; 256] = {
    let mut t = LITERAL;
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t
};

/// RFC 2045 §6.7 encoding: lines of at most 76 characters, `=` and
/// non-printable bytes escaped, whitespace before a line break escaped, and
/// the content's line breaks (CRLF or LF) written as `eol`. A bare CR is
/// escaped. A line that is just `.`, or starts with `From `, is escaped
/// too, so the part survives careless SMTP servers and mbox files.
pub(crate) fn qp_encode(content: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 8 + 16);
    let mut start = 0;
    loop {
        let nl = memchr::memchr(b'\n', &content[start..]).map(|p| start + p);
        let end = nl.unwrap_or(content.len());
        let mut line = &content[start..end];
        if nl.is_some() && line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        qp_line(line, eol, &mut out);
        match nl {
            Some(p) => {
                out.extend_from_slice(eol);
                start = p + 1;
            }
            None => return out,
        }
    }
}

fn qp_line(line: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    let mut col = 0;
    let last = line.len().wrapping_sub(1);
    let mut i = 0;
    while i < line.len() {
        // Fast path: a run of plain bytes that fits on this encoded line
        // (not at its start, not the line's last byte: those have rules).
        if col > 0 && i < last {
            let room = (ENCODED_LINE - 1).saturating_sub(col).min(last - i);
            let run = line[i..i + room]
                .iter()
                .take_while(|&&b| INNER[usize::from(b)])
                .count();
            if run > 0 {
                out.extend_from_slice(&line[i..i + run]);
                i += run;
                col += run;
                continue;
            }
        }
        let b = line[i];
        let literal = if LITERAL[usize::from(b)] {
            col != 0
                || !((b == b'.' && i == last) || (b == b'F' && line[i..].starts_with(b"From ")))
        } else {
            (b == b' ' || b == b'\t') && i != last
        };
        let width = if literal { 1 } else { 3 };
        // Room for the soft break's `=` unless this is the line's end.
        let limit = if i == last {
            ENCODED_LINE
        } else {
            ENCODED_LINE - 1
        };
        if col + width > limit {
            out.push(b'=');
            out.extend_from_slice(eol);
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
        i += 1;
    }
}

/// Base64 as senders write it: whitespace anywhere, padding optional.
fn b64_decode(body: &[u8]) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT.decode(compact).ok()
}

/// Base64 in lines of 76 characters separated by `eol`, no final break.
pub(crate) fn b64_encode(content: &[u8], eol: &[u8]) -> Vec<u8> {
    let flat = STANDARD.encode(content);
    let mut out = Vec::with_capacity(flat.len() + flat.len() / ENCODED_LINE * eol.len());
    for (i, chunk) in flat.as_bytes().chunks(ENCODED_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn qp_decodes_soft_breaks_escapes_and_junk() {
        let enc = b"caf=C3=A9 =\r\nau lait  \r\na=3db=ZZ=\r\n";
        assert_eq!(qp_decode(enc), b"caf\xc3\xa9 au lait\r\na=b=ZZ");
        assert_eq!(qp_decode(b"x=3D\ny"), b"x=\ny");
    }

    #[test]
    fn qp_lines_are_at_most_76_and_whitespace_before_breaks_is_escaped() {
        let content = format!("{} \r\n.\r\nFrom here\r\n\tend\t", "é".repeat(60));
        let enc = qp_encode(content.as_bytes(), b"\r\n");
        let text = String::from_utf8(enc.clone()).unwrap();
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        assert!(
            text.contains("=20\r\n=2E\r\n=46rom here\r\n\tend=09"),
            "{text}"
        );
        assert_eq!(qp_decode(&enc), content.as_bytes());
    }

    #[test]
    fn base64_is_wrapped_and_keeps_trailing_blank_lines() {
        let (enc, cte) = encode(Cte::Base64, vec![0xAB; 100], b"q80=\r\n\r\n", b"\r\n");
        assert_eq!(cte, Cte::Base64);
        let text = String::from_utf8(enc).unwrap();
        assert!(text.ends_with("\r\n\r\n"));
        let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        assert_eq!(lines[0].len(), 76);
        assert_eq!(b64_decode(text.as_bytes()).unwrap(), vec![0xAB; 100]);
        assert_eq!(b64_decode(b"q80"), Some(vec![0xAB, 0xCD]));
        assert_eq!(b64_decode(b"q8*="), None);
    }

    #[test]
    fn identity_parts_switch_to_qp_only_when_they_must() {
        let short = b"<a href=\"https://t.example/c/x\">x</a>\r\n";
        assert_eq!(
            encode(
                Cte::Identity { seven_bit: true },
                short.to_vec(),
                b"",
                b"\r\n"
            )
            .1
            .name(),
            "7bit"
        );
        let long = "x".repeat(1200);
        assert_eq!(
            encode(
                Cte::Identity { seven_bit: false },
                long.into_bytes(),
                b"",
                b"\n"
            )
            .1,
            Cte::QuotedPrintable
        );
        assert_eq!(
            encode(Cte::Identity { seven_bit: true }, "é".into(), b"", b"\n").1,
            Cte::QuotedPrintable
        );
        assert_eq!(
            encode(Cte::Identity { seven_bit: false }, "é".into(), b"", b"\n")
                .1
                .name(),
            "8bit"
        );
    }

    proptest! {
        #[test]
        fn qp_round_trips_with_crlf_content(text in "[ -~\t\u{e9}\u{2603}=.]{0,300}(\r\n[ -~\t=.]{0,100}){0,4}") {
            let enc = qp_encode(text.as_bytes(), b"\r\n");
            prop_assert!(enc.split(|&b| b == b'\n').all(|l| l.len() <= 77));
            prop_assert_eq!(qp_decode(&enc), text.as_bytes());
        }

        #[test]
        fn qp_round_trips_any_bytes_without_line_breaks(bytes in prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..400)) {
            let enc = qp_encode(&bytes, b"\n");
            prop_assert!(enc.is_ascii());
            prop_assert_eq!(qp_decode(&enc), bytes);
        }

        #[test]
        fn base64_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let enc = b64_encode(&bytes, b"\r\n");
            prop_assert!(enc.split(|&b| b == b'\n').all(|l| l.len() <= 77));
            prop_assert_eq!(b64_decode(&enc).unwrap(), bytes);
        }
    }
}
