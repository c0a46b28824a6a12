//! The inbound MX's view of tidings: it takes mail only for valid VERP
//! addresses and the configured feedback-loop addresses, and hands each
//! report to the same use case as `POST /v1/inbound` and `tidings inbound`.

use tidings_core::Tidings;
use tidings_delivery::metrics::{Endpoint, Listener};
use tidings_smtp::{Common, InboundHandler, InboundMessage, Refusal, Reply};

pub struct Handler {
    pub app: Tidings,
    /// Lowercased feedback-loop addresses.
    pub feedback: Vec<String>,
}

#[async_trait::async_trait]
impl InboundHandler for Handler {
    async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply> {
        let lower = rcpt.to_ascii_lowercase();
        let verp_ok = self.app.verp().is_some_and(|v| v.decode(&lower).is_ok());
        if verp_ok || self.feedback.contains(&lower) {
            Ok(())
        } else {
            Err(Common::NoSuchUser.into())
        }
    }

    async fn accept(&self, m: InboundMessage) -> Result<String, Reply> {
        match self.app.receive_report(&m.raw, &m.rcpt_to, None).await {
            Ok(s) => Ok(format!("{} ({} events)", s.kind, s.events.len())),
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
}
