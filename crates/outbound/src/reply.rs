//! SMTP replies as the client reads them (RFC 5321 §4.2).
//!
//! A reply is read as bytes, never as text: a server may put any byte in
//! its reply, and slicing a `str` at a fixed offset panics inside a
//! multi-byte character. Each line must start with a three-digit code
//! whose first digit is 2 to 5, followed by a space (the last line), a
//! hyphen (more follow) or nothing; every line of one reply carries the
//! same code. Anything else is a [`ReplyError`], which the worker turns
//! into a deferral like any broken session. The text after the code is
//! kept as UTF-8, invalid bytes replaced.

/// A reply: code and text (lines joined with a space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// `"250 2.0.0 Ok"` as the server said it.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

/// Most lines in one reply.
pub const MAX_LINES: usize = 100;
/// Longest line read, line break included.
pub const MAX_LINE: usize = 4096;
/// Bytes of an offending line quoted in an error.
const QUOTED: usize = 64;

/// Why what the server sent is not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line \"{0}\" does not start with a reply code")]
    NoCode(String),
    #[error("reply line \"{0}\" has neither a space nor a hyphen after its code")]
    BadSeparator(String),
    #[error("the lines of one reply carry different codes ({0}, then {1})")]
    MixedCodes(u16, u16),
    #[error("a reply of more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("a reply line of more than {MAX_LINE} bytes")]
    LineTooLong,
}

/// The first bytes of `line`, printable.
fn quote(line: &[u8]) -> String {
    line[..line.len().min(QUOTED)].escape_ascii().to_string()
}

/// One line of a reply, its line break removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub code: u16,
    /// The last line of its reply (a space or nothing after the code).
    pub last: bool,
    pub text: &'a [u8],
}

/// Parse one reply line; a trailing CRLF or LF is ignored.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ReplyError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let code = match line {
        [a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(ReplyError::NoCode(quote(line))),
    };
    let (last, text) = match &line[3..] {
        [] => (true, &[][..]),
        [b' ', text @ ..] => (true, text),
        [b'-', text @ ..] => (false, text),
        _ => return Err(ReplyError::BadSeparator(quote(line))),
    };
    Ok(Line { code, last, text })
}

/// Assembles a reply from its lines, as they arrive.
#[derive(Debug, Default)]
pub struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    /// Take the next line. Once the reply's last line arrived: the reply,
    /// and the text of each of its lines (EHLO keywords).
    pub fn push(&mut self, line: &[u8]) -> Result<Option<(Reply, Vec<String>)>, ReplyError> {
        let l = parse_line(line)?;
        match self.code {
            Some(c) if c != l.code => return Err(ReplyError::MixedCodes(c, l.code)),
            _ => self.code = Some(l.code),
        }
        if self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.lines
            .push(String::from_utf8_lossy(l.text).into_owned());
        if !l.last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        let reply = Reply {
            code: l.code,
            text: lines.join(" "),
        };
        Ok(Some((reply, lines)))
    }
}

/// A whole reply from `lines`, for tests and callers that hold it at once.
pub fn parse(lines: &[&[u8]]) -> Result<Option<Reply>, ReplyError> {
    let mut r = ReplyReader::default();
    for l in lines {
        if let Some((reply, _)) = r.push(l)? {
            return Ok(Some(reply));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replies_are_read_as_bytes() {
        let ok = parse(&[b"250-mx.example greets you\r\n", b"250 PIPELINING\r\n"]).unwrap();
        assert_eq!(
            ok,
            Some(Reply {
                code: 250,
                text: "mx.example greets you PIPELINING".into()
            })
        );
        assert_eq!(parse(&[b"354\r\n"]).unwrap().unwrap().code, 354);
        assert_eq!(
            parse(&[b"550 5.1.1 \xff caf\xc3\xa9\n"])
                .unwrap()
                .unwrap()
                .text,
            "5.1.1 \u{fffd} café"
        );
        // A multi-byte character where the code should be: an error, not a panic.
        assert_eq!(
            parse(&["25é ok\r\n".as_bytes()]),
            Err(ReplyError::NoCode("25\\xc3\\xa9 ok".into()))
        );
        assert!(matches!(
            parse(&[b"2500 ok"]),
            Err(ReplyError::BadSeparator(_))
        ));
        assert!(matches!(parse(&[b"ok"]), Err(ReplyError::NoCode(_))));
        assert!(matches!(parse(&[b"099 x"]), Err(ReplyError::NoCode(_))));
        assert!(matches!(parse(&[b"600 x"]), Err(ReplyError::NoCode(_))));
        assert_eq!(
            parse(&[b"250-a", b"451 b"]),
            Err(ReplyError::MixedCodes(250, 451))
        );
        let many: Vec<&[u8]> = std::iter::repeat_n(&b"250-x"[..], 200).collect();
        assert_eq!(parse(&many), Err(ReplyError::TooManyLines));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(
            lines in prop::collection::vec(
                (
                    // Most arbitrary bytes fail at the first byte; these
                    // reach the separator and the text.
                    prop::sample::select(vec!["", "2", "25", "250", "250-", "250 "]),
                    prop::collection::vec(any::<u8>(), 0..40),
                ),
                1..8,
            )
        ) {
            let lines: Vec<Vec<u8>> = lines
                .into_iter()
                .map(|(prefix, rest)| [prefix.as_bytes(), &rest].concat())
                .collect();
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            if let Ok(Some(r)) = parse(&lines) {
                prop_assert!((200..600).contains(&r.code));
            }
        }

        #[test]
        fn any_line_with_a_code_prefix_parses(code in 200u16..600, sep in prop::sample::select(vec![&b" "[..], b"-", b""]), text in prop::collection::vec(any::<u8>().prop_filter("no line break", |b| *b != b'\r' && *b != b'\n'), 0..60)) {
            let mut line = code.to_string().into_bytes();
            line.extend_from_slice(sep);
            if !sep.is_empty() {
                line.extend_from_slice(&text);
            }
            let l = parse_line(&line).unwrap();
            prop_assert_eq!(l.code, code);
            prop_assert_eq!(l.last, sep != b"-");
            if !sep.is_empty() {
                prop_assert_eq!(l.text, &text[..]);
            }
        }

        #[test]
        fn multi_line_replies_round_trip(code in 200u16..600, texts in prop::collection::vec("[^\r\n]{0,30}", 1..6)) {
            let wire: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let sep = if i + 1 == texts.len() { ' ' } else { '-' };
                    format!("{code}{sep}{t}\r\n")
                })
                .collect();
            let lines: Vec<&[u8]> = wire.iter().map(|l| l.as_bytes()).collect();
            let r = parse(&lines).unwrap().unwrap();
            prop_assert_eq!(r.code, code);
            prop_assert_eq!(r.text, texts.join(" "));
        }
    }
}
