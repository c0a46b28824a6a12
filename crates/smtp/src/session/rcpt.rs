//! RCPT TO: one recipient, checked by the handler, within the limit. On an
//! inbound MX this check is what makes it never a relay: a recipient the
//! handler does not claim is refused here, before any data.

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step};
use crate::handler::Mode;
use crate::reply::Common;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn rcpt(&mut self, to: RcptTo<String>) -> Step {
        let Some(tx) = &self.tx else {
            return self.error(Common::BadSequence("Need MAIL before RCPT"));
        };
        if to.orcpt.is_some() || to.rrvs != 0 || to.flags != 0 {
            return self.error(Common::UnsupportedParameter("NOTIFY/ORCPT/RRVS".into()));
        }
        let rcpt = to.address;
        if rcpt.is_empty() || rcpt.contains(char::REPLACEMENT_CHARACTER) {
            return self.error(Common::BadRecipientSyntax);
        }
        if !tx.smtputf8 && !rcpt.is_ascii() {
            self.reply(Common::NonAsciiAddress);
            return Ok(());
        }
        if tx.rcpt_to.contains(&rcpt) {
            self.reply(Common::RecipientOk);
            return Ok(());
        }
        if tx.rcpt_to.len() >= self.shared.config.max_recipients {
            self.reply(Common::TooManyRecipients);
            return Ok(());
        }
        let verdict = match (&self.shared.mode, tx.account) {
            (Mode::Submission(h), Some(account)) => h.check_recipient(account, &rcpt).await,
            (Mode::Inbound(h), _) => h.check_recipient(&rcpt).await,
            // MAIL does not start a submission transaction without AUTH.
            (Mode::Submission(_), None) => Err(Common::AuthRequired.into()),
        };
        match verdict {
            Ok(()) => {
                if let Some(tx) = self.tx.as_mut() {
                    tx.rcpt_to.push(rcpt);
                }
                self.reply(Common::RecipientOk);
            }
            Err(reply) => self.reply(reply),
        }
        Ok(())
    }
}
