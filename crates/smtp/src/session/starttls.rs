//! STARTTLS (RFC 3207): upgrade the stream in place and forget everything
//! learnt before it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step};
use crate::reply::Common;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn starttls(&mut self) -> Step {
        if self.conn.is_tls() {
            return self.error(Common::BadSequence("TLS already active"));
        }
        if !matches!(self.helo, Some((_, true))) {
            return self.error(Common::BadSequence("Send EHLO first"));
        }
        self.reply(Common::ReadyToStartTls);
        self.conn.flush().await?;
        // Commands pipelined after STARTTLS came in the clear; reading them
        // as if they came over TLS is the classic injection (CVE-2011-0411).
        let injected = self.conn.discard_input();
        if injected > 0 {
            tracing::info!(client = %self.client_ip, bytes = injected, "discarded input sent after STARTTLS");
        }
        let acceptor = self.shared.tls.acceptor.clone();
        let timeout = self.shared.config.tls_handshake_timeout;
        self.conn.upgrade(&acceptor, timeout).await?;
        // RFC 3207 section 4.2: the client starts over with EHLO.
        self.helo = None;
        self.account = None;
        self.tx = None;
        Ok(())
    }
}
