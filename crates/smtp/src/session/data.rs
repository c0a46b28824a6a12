//! DATA: read the message to its end, whatever happens, and hand it to the
//! handler only if every rule held. `250` only after the handler has
//! stored it; a client that disconnects mid-DATA leaves nothing behind.
//!
//! Framing is the same in both modes: only `CRLF.CRLF` ends the data, and
//! a line ended by a bare LF, a CR not followed by LF, a NUL octet, or a
//! line longer than 998 octets makes the message `554 5.6.0` (RFC 5321
//! section 2.3.8: CR and LF only as CRLF). So none of the end-of-data
//! forms other servers have been fooled by (`LF.LF`, `CR.CR`, `CRLF.CR`,
//! …) is ever relayed to a server that might read it as framing. The one
//! difference: an inbound MX accepts 8-bit headers without SMTPUTF8, since
//! what it receives is parsed, never relayed.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::Line;
use super::{Session, Step, Transaction};
use crate::handler::{InboundMessage, Mode, Submission};
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
        let Some(tx) = self.tx.take_if(|tx| !tx.rcpt_to.is_empty()) else {
            return self.error(Common::BadSequence(if self.tx.is_some() {
                "Need RCPT before DATA"
            } else {
                "Need MAIL before DATA"
            }));
        };
        self.reply(Common::StartData);
        let received = self.receive().await?;
        let reply = match received {
            Err(refusal) => refusal.into(),
            Ok(msg) => self.hand_over(tx, msg).await,
        };
        self.reply(reply);
        Ok(())
    }

    /// Give a message that met every framing rule to the handler of this
    /// mode; the reply to the end of DATA.
    async fn hand_over(&mut self, tx: Transaction, msg: Received) -> Reply {
        let size = msg.raw.len();
        let client = self.client_ip;
        let tls = self.conn.is_tls();
        let accepted = match (&self.shared.mode, tx.account) {
            (Mode::Submission(_), _) if msg.eight_bit_headers && !tx.smtputf8 => {
                return Common::EightBitHeaders.into();
            }
            (Mode::Submission(h), Some(account)) => {
                let submission = Submission {
                    account,
                    mail_from: tx.mail_from,
                    rcpt_to: tx.rcpt_to,
                    raw: msg.raw.freeze(),
                    smtputf8: tx.smtputf8,
                    body_8bit: tx.body_8bitmime || msg.eight_bit_body,
                    client_ip: client,
                    tls,
                };
                let accepted = h.accept(submission).await;
                if let Ok(id) = &accepted {
                    tracing::info!(%client, %account, message = %id, size, "smtp message accepted");
                }
                accepted
            }
            (Mode::Inbound(h), _) => {
                let message = InboundMessage {
                    mail_from: tx.mail_from,
                    rcpt_to: tx.rcpt_to,
                    raw: msg.raw.freeze(),
                    client_ip: client,
                    tls,
                    helo: self
                        .helo
                        .as_ref()
                        .map(|(h, _)| h.clone())
                        .unwrap_or_default(),
                };
                let (from, rcpts) = (message.mail_from.clone(), message.rcpt_to.len());
                let accepted = h.accept(message).await;
                if let Ok(id) = &accepted {
                    tracing::info!(%client, from = ?from, rcpts, message = %id, size, tls, "inbound message accepted");
                }
                accepted
            }
            // MAIL does not start a submission transaction without AUTH.
            (Mode::Submission(_), None) => return Common::AuthRequired.into(),
        };
        match accepted {
            Ok(id) => Common::Queued(id).into(),
            Err(reply) => reply,
        }
    }

    /// Read up to `CRLF.CRLF`, unstuffing dots. Past the first broken rule
    /// nothing more is kept, but reading goes on to the end so the session
    /// stays in step with the client. Only `CRLF.CRLF` ends the data: a
    /// `.` after a bare LF or a bare CR does not (no SMTP smuggling).
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
            if memchr::memchr(b'\r', content).is_some() {
                refusal.get_or_insert(Common::BareCr);
            }
            if memchr::memchr(0, content).is_some() {
                refusal.get_or_insert(Common::NulOctet);
            }
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
