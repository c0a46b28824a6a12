//! The inbound MX's view of tidings: it takes mail only for valid VERP
//! addresses, the configured feedback-loop addresses, and `postmaster`
//! (RFC 5321 section 4.5.1: any case, bare or at the bounce domain or the
//! host name), and hands each message to the same use case as
//! `POST /v1/inbound` and `tidings inbound`.
//!
//! Mail to postmaster is taken as a possible report: bounces and ARF
//! complaints are often sent there, and they are matched to the message
//! they quote by its Message-ID, as any report without a VERP address is.
//! Anything else (a person writing to postmaster) is counted as an
//! `unrecognised` report and logged with its sender, never kept: tidings
//! is not a mailbox.

use tidings_core::metrics::{Endpoint, Listener};
use tidings_core::Tidings;
use tidings_smtp::{Common, InboundHandler, InboundMessage, Refusal, Reply};

pub struct Handler {
    pub app: Tidings,
    /// Lowercased feedback-loop addresses.
    pub feedback: Vec<String>,
    /// Lowercased domains whose postmaster this MX is: the bounce domain
    /// and the host name.
    pub domains: Vec<String>,
}

impl Handler {
    fn is_postmaster(&self, lower: &str) -> bool {
        match lower.split_once('@') {
            None => lower == "postmaster",
            Some((local, domain)) => {
                local == "postmaster" && self.domains.iter().any(|d| d == domain)
            }
        }
    }
}

#[async_trait::async_trait]
impl InboundHandler for Handler {
    async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply> {
        let lower = rcpt.to_ascii_lowercase();
        let verp_ok = self.app.verp().is_some_and(|v| v.decode(&lower).is_ok());
        if verp_ok || self.feedback.contains(&lower) || self.is_postmaster(&lower) {
            Ok(())
        } else {
            Err(Common::NoSuchUser.into())
        }
    }

    async fn accept(&self, m: InboundMessage) -> Result<String, Reply> {
        let postmaster = m
            .rcpt_to
            .iter()
            .any(|r| self.is_postmaster(&r.to_ascii_lowercase()));
        match self.app.receive_report(&m.raw, &m.rcpt_to, None).await {
            Ok(s) => {
                if postmaster {
                    tracing::info!(from = ?m.mail_from, client = %m.client_ip, kind = %s.kind, events = s.events.len(), "mail to postmaster");
                }
                Ok(format!("{} ({} events)", s.kind, s.events.len()))
            }
            Err(e) => {
                tracing::error!(error = %e, "recording an inbound report failed");
                Err(Common::StorageFailure.into())
            }
        }
    }

    fn session_started(&self) {
        if let Some(m) = self.app.metrics() {
            m.smtp_session(Listener::Inbound);
        }
    }

    fn connection_refused(&self, why: Refusal) {
        if let Some(m) = self.app.metrics() {
            m.connection_refused(Endpoint::Inbound, crate::http_server::reason(why));
        }
    }

    fn connection_opened(&self) {
        if let Some(m) = self.app.metrics() {
            m.connection_opened(Endpoint::Inbound);
        }
    }

    fn connection_closed(&self) {
        if let Some(m) = self.app.metrics() {
            m.connection_closed(Endpoint::Inbound);
        }
    }
}
