//! RCPT TO: one recipient, checked by the handler, within the limit. On an
//! inbound MX this check is what makes it never a relay: a recipient the
//! handler does not claim is refused here, before any data.
//!
//! `RCPT TO:<Postmaster>`, without a domain, is the one recipient RFC 5321
//! (section 4.5.1) allows without one; it reaches the handler as
//! `postmaster`, for it to claim (an inbound MX must).

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step};
use crate::handler::Mode;
use crate::reply::Common;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn rcpt(&mut self, to: RcptTo<String>, bare_postmaster: bool) -> Step {
        let Some(tx) = &self.tx else {
            return self.error(Common::BadSequence("Need MAIL before RCPT"));
        };
        if to.orcpt.is_some() || to.rrvs != 0 || to.flags != 0 {
            return self.error(Common::UnsupportedParameter("NOTIFY/ORCPT/RRVS".into()));
        }
        // The parser gives `<Postmaster>` as an empty address, as it does `<>`.
        let rcpt = match to.address {
            a if a.is_empty() && bare_postmaster => "postmaster".to_string(),
            a => a,
        };
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

/// Whether a RCPT command line names `<Postmaster>` without a domain (any
/// case).
pub(super) fn is_bare_postmaster(line: &[u8]) -> bool {
    let Some(open) = memchr::memchr(b'<', line) else {
        return false;
    };
    let rest = &line[open + 1..];
    memchr::memchr(b'>', rest)
        .is_some_and(|close| rest[..close].eq_ignore_ascii_case(b"postmaster"))
}
