//! DATA: read the message to its end, whatever happens, and hand it to the
//! handler only if every rule held. `250` only after the handler has
//! stored it; a client that disconnects mid-DATA leaves nothing behind.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::Line;
use super::{Session, Step};
use crate::handler::Submission;
use crate::reply::{Common, Reply};

/// RFC 5322 section 2.1.1: at most 998 octets before the CRLF.
pub(crate) const MAX_DATA_LINE: usize = 998;

/// A message as read, before the handler sees it.
struct Received {
    raw: BytesMut,
    eight_bit_headers: bool,
    eight_bit_body: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn data(&mut self) -> Step {
        // Whatever happens from here, the transaction ends with this DATA.
        let (Some(account), Some(tx)) =
            (self.account, self.tx.take_if(|tx| !tx.rcpt_to.is_empty()))
        else {
            return self.error(Common::BadSequence(if self.tx.is_some() {
                "Need RCPT before DATA"
            } else {
                "Need MAIL before DATA"
            }));
        };
        self.reply(Common::StartData);
        let received = self.receive().await?;
        let reply: Reply = match received {
            Err(refusal) => refusal.into(),
            Ok(msg) if msg.eight_bit_headers && !tx.smtputf8 => Common::EightBitHeaders.into(),
            Ok(msg) => {
                let size = msg.raw.len();
                let submission = Submission {
                    account,
                    mail_from: tx.mail_from,
                    rcpt_to: tx.rcpt_to,
                    raw: msg.raw.freeze(),
                    smtputf8: tx.smtputf8,
                    body_8bit: tx.body_8bitmime || msg.eight_bit_body,
                    client_ip: self.client_ip,
                    tls: self.conn.is_tls(),
                };
                match self.shared.handler.accept(submission).await {
                    Ok(id) => {
                        tracing::info!(client = %self.client_ip, %account, message = %id, size, "smtp message accepted");
                        Common::Queued(id).into()
                    }
                    Err(reply) => reply,
                }
            }
        };
        self.reply(reply);
        Ok(())
    }

    /// Read up to `CRLF.CRLF`, unstuffing dots. Past the first broken rule
    /// nothing more is kept, but reading goes on to the end so the session
    /// stays in step with the client. Only `CRLF.CRLF` ends the data: a
    /// `.` after a bare LF does not (no SMTP smuggling).
    async fn receive(&mut self) -> Result<Result<Received, Common>, super::SessionEnd> {
        let max = self.shared.config.max_message_bytes;
        let mut msg = Received {
            raw: BytesMut::new(),
            eight_bit_headers: false,
            eight_bit_body: false,
        };
        let mut size = 0usize;
        let mut refusal: Option<Common> = None;
        let mut in_headers = true;
        // The CRLF of the DATA command itself starts the first line.
        let mut after_crlf = true;
        loop {
            let line = match self.conn.read_line(MAX_DATA_LINE + 2).await? {
                Line::Complete(line) => line,
                Line::TooLong { crlf } => {
                    refusal.get_or_insert(Common::DataLineTooLong);
                    after_crlf = crlf;
                    continue;
                }
            };
            let Some(content) = line.strip_suffix(b"\r\n") else {
                refusal.get_or_insert(Common::BareLf);
                after_crlf = false;
                continue;
            };
            if content == b"." && after_crlf {
                break;
            }
            after_crlf = true;
            let content = content.strip_prefix(b".").unwrap_or(content);
            size = size.saturating_add(content.len() + 2);
            if size > max {
                refusal = Some(Common::MessageTooBig);
                msg.raw = BytesMut::new();
            }
            if refusal.is_some() {
                continue;
            }
            if in_headers {
                if content.is_empty() {
                    in_headers = false;
                } else if !content.is_ascii() {
                    msg.eight_bit_headers = true;
                }
            } else if !content.is_ascii() {
                msg.eight_bit_body = true;
            }
            msg.raw.reserve(content.len() + 2);
            msg.raw.extend_from_slice(content);
            msg.raw.extend_from_slice(b"\r\n");
        }
        Ok(match refusal {
            Some(r) => Err(r),
            None => Ok(msg),
        })
    }
}
