//! EHLO and HELO: who the client says it is, and what the server offers.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step};
use crate::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// EHLO (`esmtp`) or HELO. Either one ends a transaction in progress.
    /// STARTTLS is offered until TLS is active; AUTH only once it is, and
    /// never by an inbound MX.
    pub(super) fn ehlo(&mut self, host: String, esmtp: bool) -> Step {
        self.tx = None;
        let mut lines = vec![format!("{} greets {}", self.hostname(), host)];
        if esmtp {
            lines.extend([
                "PIPELINING".to_string(),
                format!("SIZE {}", self.shared.config.max_message_bytes),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "ENHANCEDSTATUSCODES".into(),
            ]);
            if !self.conn.is_tls() {
                lines.push("STARTTLS".into());
            } else if !self.inbound() {
                lines.push("AUTH PLAIN LOGIN".into());
            }
        }
        self.helo = Some((host, esmtp));
        self.reply(Reply::new(250, None, lines.join("\n")));
        Ok(())
    }
}
