//! The SMTP submission server's view of tidings: credentials are the
//! account's API key (user name `apikey`, as SendGrid and others do, or
//! the account id), and every message goes through the same accept path as
//! `POST /v1/messages`.

use tidings_core::metrics::{Endpoint, Listener};
use tidings_core::Source;
use tidings_core::{CoreError, ErrorCode, Tidings};
use tidings_smtp::{Refusal, Reply, Submission, SubmissionHandler};
use tidings_types::AccountId;

pub struct Handler {
    pub app: Tidings,
}

#[async_trait::async_trait]
impl SubmissionHandler for Handler {
    async fn authenticate(&self, username: &str, password: &str) -> Option<AccountId> {
        let account = self.app.authenticate(password).await.ok()?;
        (username == "apikey" || username == account.to_string()).then_some(account)
    }

    async fn check_recipient(&self, _account: AccountId, rcpt: &str) -> Result<(), Reply> {
        tidings_mail::Address::parse(rcpt)
            .map(|_| ())
            .map_err(|_| Reply::new(501, Some((5, 1, 3)), "Bad recipient address syntax"))
    }

    async fn accept(&self, s: Submission) -> Result<String, Reply> {
        let accepted = self
            .app
            .send_raw(
                s.account,
                &s.raw,
                Some((s.mail_from, s.rcpt_to)),
                Source::Smtp,
            )
            .await
            .map_err(|e| match e.code() {
                ErrorCode::TooManyRecipients => Reply::new(452, Some((4, 5, 3)), e.to_string()),
                ErrorCode::MessageTooLarge => Reply::new(552, Some((5, 3, 4)), e.to_string()),
                ErrorCode::InvalidAddress => Reply::new(550, Some((5, 1, 3)), e.to_string()),
                ErrorCode::UnknownSenderDomain | ErrorCode::DomainUnverified => {
                    Reply::new(550, Some((5, 7, 1)), e.to_string())
                }
                ErrorCode::InvalidMessage | ErrorCode::InvalidRequest => {
                    Reply::new(554, Some((5, 6, 0)), e.to_string())
                }
                _ => {
                    if let CoreError::Store(err) = &e {
                        tracing::error!(error = %err, "storing a submitted message failed");
                    }
                    Reply::new(451, Some((4, 3, 0)), "Temporary storage failure, try again")
                }
            })?;
        Ok(accepted.id.to_string())
    }

    fn session_started(&self) {
        if let Some(m) = self.app.metrics() {
            m.smtp_session(Listener::Submission);
        }
    }

    fn connection_refused(&self, why: Refusal) {
        if let Some(m) = self.app.metrics() {
            m.connection_refused(Endpoint::Submission, crate::http_server::reason(why));
        }
    }

    fn connection_opened(&self) {
        if let Some(m) = self.app.metrics() {
            m.connection_opened(Endpoint::Submission);
        }
    }

    fn connection_closed(&self) {
        if let Some(m) = self.app.metrics() {
            m.connection_closed(Endpoint::Submission);
        }
    }

    fn auth_failed(&self) {
        if let Some(m) = self.app.metrics() {
            m.smtp_auth_failures.inc();
        }
    }
}
