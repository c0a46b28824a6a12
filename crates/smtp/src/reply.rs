//! SMTP replies. [`Reply`] is what goes on the wire and what a
//! [`crate::SubmissionHandler`] or [`crate::InboundHandler`] returns to
//! refuse something; [`Common`] names
//! every reply the session itself gives, so each code is chosen once, here.

use std::fmt;

/// One SMTP reply: a code, an optional RFC 3463 enhanced status code, and
/// text. Text with line breaks is sent as a multi-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<(u8, u16, u16)>,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, enhanced: Option<(u8, u16, u16)>, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// 2xx and 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Append the wire form, one `code-` line per text line and `code ` on
    /// the last. CR and LF never reach the wire inside a line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self
            .text
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{sep}", self.code).as_bytes());
            if let Some((a, b, c)) = self.enhanced {
                out.extend_from_slice(format!("{a}.{b}.{c} ").as_bytes());
            }
            out.extend(line.bytes().filter(|&b| b != b'\r'));
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some((a, b, c)) = self.enhanced {
            write!(f, " {a}.{b}.{c}")?;
        }
        write!(f, " {}", self.text)
    }
}

/// The replies of the session and the common ones a handler gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Common {
    /// `250 2.0.0 OK`
    Ok,
    /// `250 2.1.0` after MAIL.
    SenderOk,
    /// `250 2.1.5` after RCPT.
    RecipientOk,
    /// `250 2.0.0 OK queued as <id>` after the message is durably accepted.
    Queued(String),
    /// `354` after DATA.
    StartData,
    /// `221 2.0.0` after QUIT.
    Bye,
    /// `220 2.0.0` after STARTTLS.
    ReadyToStartTls,
    /// `235 2.7.0`
    AuthSucceeded,
    /// `252 2.1.5` to VRFY: nothing is verified.
    CannotVerify,
    /// `214 2.0.0` to HELP.
    Help,
    /// `214 2.0.0` to HELP on an inbound MX (no AUTH).
    InboundHelp,
    /// `500 5.5.1` to an unknown command or a garbage line.
    UnknownCommand,
    /// `500 5.5.2` to a command line longer than the limit.
    LineTooLong,
    /// `501 5.5.2` with the expected syntax.
    Syntax(&'static str),
    /// `501 5.5.4` to a parameter with a bad value.
    InvalidParameter(&'static str),
    /// `555 5.5.4` to a MAIL or RCPT parameter that is not offered.
    UnsupportedParameter(String),
    /// `501 5.1.7`
    BadSenderSyntax,
    /// `501 5.1.3`
    BadRecipientSyntax,
    /// `503 5.5.1` to a command out of sequence, with what was expected.
    BadSequence(&'static str),
    /// `502 5.5.1` to a command that is known but not offered.
    NotImplemented,
    /// `530 5.7.0` to MAIL from a client that has not authenticated.
    AuthRequired,
    /// `538 5.7.11` to AUTH before TLS.
    EncryptionRequired,
    /// `504 5.5.4` to an AUTH mechanism other than PLAIN and LOGIN.
    UnsupportedMechanism,
    /// `501 5.5.2` to an AUTH response that is not base64 or not well formed.
    BadAuthResponse,
    /// `501 5.7.0` when the client answers a challenge with `*`.
    AuthCancelled,
    /// `535 5.7.8`
    AuthFailed,
    /// `421 4.7.0`, and the session is closed.
    TooManyAuthFailures,
    /// `452 4.5.3`
    TooManyRecipients,
    /// `552 5.3.4`, to MAIL with a SIZE over the limit and after DATA.
    MessageTooBig,
    /// `553 5.6.7` to a non-ASCII address without `SMTPUTF8`.
    NonAsciiAddress,
    /// `550 5.6.7` to a message with 8-bit headers without `SMTPUTF8`.
    EightBitHeaders,
    /// `554 5.6.0` to a message with a line longer than 998 octets.
    DataLineTooLong,
    /// `554 5.6.0` to a message with a line not ended by CRLF.
    BareLf,
    /// `554 5.6.0` to a message with a CR not followed by LF.
    BareCr,
    /// `554 5.6.0` to a message with a NUL octet.
    NulOctet,
    /// `554 5.6.0` for a message that cannot be parsed (for handlers).
    Unparseable,
    /// `451 4.3.0` when the message could not be stored (for handlers).
    StorageFailure,
    /// `550 5.1.1` for a recipient that is refused (for handlers).
    RecipientRejected,
    /// `550 5.1.1 No such user here`: an inbound MX refusing a recipient
    /// that is not one of its own (for handlers).
    NoSuchUser,
    /// `421 4.7.0`, and the session is closed.
    TooManyErrors,
    /// `421 4.4.2`, and the session is closed.
    IdleTimeout,
    /// `421 4.4.2`, and the session is closed.
    SessionTimeout,
    /// `421 4.3.2`, and the session is closed.
    ShuttingDown,
    /// `421 4.3.2` to a connection over the limit.
    TooManyConnections,
    /// `421 4.7.0` to a connection over the limit of its client address.
    TooManyConnectionsFromIp,
    /// `421 4.4.2` on submission, to a client that has not authenticated
    /// within the setup timeout; the session is closed.
    AuthTimeout,
    /// `421 4.4.2` on the inbound MX, to a client that has not started a
    /// transaction within the setup timeout; the session is closed.
    MailTimeout,
}

impl From<Common> for Reply {
    fn from(c: Common) -> Reply {
        use Common::*;
        let (code, enh, text): (u16, Option<(u8, u16, u16)>, String) = match c {
            Ok => (250, Some((2, 0, 0)), "OK".into()),
            SenderOk => (250, Some((2, 1, 0)), "Sender OK".into()),
            RecipientOk => (250, Some((2, 1, 5)), "Recipient OK".into()),
            Queued(id) => (250, Some((2, 0, 0)), format!("OK queued as {id}")),
            StartData => (354, None, "Start mail input; end with <CRLF>.<CRLF>".into()),
            Bye => (221, Some((2, 0, 0)), "Bye".into()),
            ReadyToStartTls => (220, Some((2, 0, 0)), "Ready to start TLS".into()),
            AuthSucceeded => (235, Some((2, 7, 0)), "Authentication succeeded".into()),
            CannotVerify => (
                252,
                Some((2, 1, 5)),
                "Cannot VRFY user, but will accept message and attempt delivery".into(),
            ),
            Help => (
                214,
                Some((2, 0, 0)),
                "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT".into(),
            ),
            InboundHelp => (
                214,
                Some((2, 0, 0)),
                "Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP VRFY HELP QUIT".into(),
            ),
            UnknownCommand => (500, Some((5, 5, 1)), "Unrecognized command".into()),
            LineTooLong => (500, Some((5, 5, 2)), "Line too long".into()),
            Syntax(s) => (501, Some((5, 5, 2)), format!("Syntax: {s}")),
            InvalidParameter(p) => (501, Some((5, 5, 4)), format!("Invalid {p} parameter")),
            UnsupportedParameter(p) => (555, Some((5, 5, 4)), format!("Unsupported parameter {p}")),
            BadSenderSyntax => (501, Some((5, 1, 7)), "Bad sender address syntax".into()),
            BadRecipientSyntax => (501, Some((5, 1, 3)), "Bad recipient address syntax".into()),
            BadSequence(s) => (503, Some((5, 5, 1)), s.into()),
            NotImplemented => (502, Some((5, 5, 1)), "Command not implemented".into()),
            AuthRequired => (530, Some((5, 7, 0)), "Authentication required".into()),
            EncryptionRequired => (
                538,
                Some((5, 7, 11)),
                "Encryption required for requested authentication mechanism".into(),
            ),
            UnsupportedMechanism => (
                504,
                Some((5, 5, 4)),
                "Unrecognized authentication type".into(),
            ),
            BadAuthResponse => (
                501,
                Some((5, 5, 2)),
                "Invalid authentication response".into(),
            ),
            AuthCancelled => (501, Some((5, 7, 0)), "Authentication cancelled".into()),
            AuthFailed => (
                535,
                Some((5, 7, 8)),
                "Authentication credentials invalid".into(),
            ),
            TooManyAuthFailures => (
                421,
                Some((4, 7, 0)),
                "Too many failed authentication attempts, closing connection".into(),
            ),
            TooManyRecipients => (452, Some((4, 5, 3)), "Too many recipients".into()),
            MessageTooBig => (
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed maximum message size".into(),
            ),
            NonAsciiAddress => (
                553,
                Some((5, 6, 7)),
                "Non-ASCII address requires SMTPUTF8".into(),
            ),
            EightBitHeaders => (
                550,
                Some((5, 6, 7)),
                "Non-ASCII header requires SMTPUTF8 in MAIL FROM".into(),
            ),
            DataLineTooLong => (
                554,
                Some((5, 6, 0)),
                "Message has a line longer than 998 octets".into(),
            ),
            BareLf => (
                554,
                Some((5, 6, 0)),
                "Message has a line not ended by CRLF".into(),
            ),
            BareCr => (
                554,
                Some((5, 6, 0)),
                "Message has a CR not followed by LF".into(),
            ),
            NulOctet => (554, Some((5, 6, 0)), "Message has a NUL octet".into()),
            Unparseable => (554, Some((5, 6, 0)), "Message cannot be parsed".into()),
            StorageFailure => (
                451,
                Some((4, 3, 0)),
                "Temporary failure, try again later".into(),
            ),
            RecipientRejected => (550, Some((5, 1, 1)), "Recipient rejected".into()),
            NoSuchUser => (550, Some((5, 1, 1)), "No such user here".into()),
            TooManyErrors => (
                421,
                Some((4, 7, 0)),
                "Too many errors, closing connection".into(),
            ),
            IdleTimeout => (
                421,
                Some((4, 4, 2)),
                "Idle timeout, closing connection".into(),
            ),
            SessionTimeout => (
                421,
                Some((4, 4, 2)),
                "Session time limit exceeded, closing connection".into(),
            ),
            ShuttingDown => (
                421,
                Some((4, 3, 2)),
                "Service shutting down, closing connection".into(),
            ),
            TooManyConnections => (
                421,
                Some((4, 3, 2)),
                "Too many connections, try again later".into(),
            ),
            TooManyConnectionsFromIp => (
                421,
                Some((4, 7, 0)),
                "Too many connections from your address".into(),
            ),
            AuthTimeout => (
                421,
                Some((4, 4, 2)),
                "Authentication not completed in time, closing connection".into(),
            ),
            MailTimeout => (
                421,
                Some((4, 4, 2)),
                "No mail transaction started in time, closing connection".into(),
            ),
        };
        Reply::new(code, enh, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: impl Into<Reply>) -> String {
        let mut out = Vec::new();
        r.into().write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_and_multi_line() {
        assert_eq!(
            wire(Common::AuthRequired),
            "530 5.7.0 Authentication required\r\n"
        );
        assert_eq!(
            wire(Reply::new(250, None, "a\r\nb\nc")),
            "250-a\r\n250-b\r\n250 c\r\n"
        );
        assert_eq!(
            wire(Reply::new(550, Some((5, 1, 1)), "x\ry")),
            "550 5.1.1 xy\r\n"
        );
        assert_eq!(
            Reply::from(Common::TooManyRecipients).to_string(),
            "452 4.5.3 Too many recipients"
        );
    }
}
