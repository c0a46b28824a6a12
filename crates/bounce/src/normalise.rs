//! Stage 1: bytes in, one canonical byte form out.
//!
//! Real reports arrive with LF, CRLF or CR-only line endings (old Mac MTAs,
//! some gateways), sometimes mixed, sometimes behind an mbox `From ` line.
//! Everything downstream assumes LF only, so it is done once here. The
//! input is also capped: bounces are small, and a cap keeps every later
//! stage linear in a bounded size.

/// Messages longer than this are cut: every report format puts the part that
/// matters (the status or feedback fields) well before it.
pub const MAX_INPUT: usize = 2 * 1024 * 1024;

/// LF line endings, no mbox separator, at most [`MAX_INPUT`] bytes.
pub fn normalise(raw: &[u8]) -> Vec<u8> {
    let raw = &raw[..raw.len().min(MAX_INPUT)];
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                // CRLF, and CR+LF with stray CRs before it ("\r\r\n"), are
                // one line break; a CR alone is one too.
                let mut j = i + 1;
                while raw.get(j) == Some(&b'\r') {
                    j += 1;
                }
                if raw.get(j) == Some(&b'\n') {
                    i = j;
                }
                out.push(b'\n');
            }
            c => out.push(c),
        }
        i += 1;
    }
    // Leading blank lines and an mbox "From " envelope line are not headers.
    let mut start = 0;
    while out.get(start) == Some(&b'\n') {
        start += 1;
    }
    if out[start..].starts_with(b"From ") {
        start = out[start..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(out.len(), |p| start + p + 1);
    }
    if start > 0 {
        out.drain(..start);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_line_endings_become_lf() {
        assert_eq!(
            normalise(b"a\r\nb\rc\nd\r\r\ne\r\rf"),
            b"a\nb\nc\nd\ne\n\nf"
        );
    }

    #[test]
    fn strips_mbox_line() {
        assert_eq!(
            normalise(b"From MAILER-DAEMON Thu Apr 29\nSubject: x\n"),
            b"Subject: x\n"
        );
    }
}
