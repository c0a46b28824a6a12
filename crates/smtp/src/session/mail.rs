//! MAIL FROM: starts a transaction. On submission only for an
//! authenticated client — the submission server never relays for anyone
//! else. On an inbound MX for anyone, the null sender `<>` included (every
//! DSN has it): there RCPT is what keeps it from being a relay.

use smtp_proto::{
    MailFrom, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_CONPERM,
    MAIL_REQUIRETLS, MAIL_RET_FULL, MAIL_RET_HDRS, MAIL_SMTPUTF8,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Step, Transaction};
use crate::handler::Mode;
use crate::reply::Common;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn mail(&mut self, from: MailFrom<String>) -> Step {
        if self.helo.is_none() {
            return self.error(Common::BadSequence("Send EHLO first"));
        }
        let account = match (&self.shared.mode, self.account) {
            (Mode::Submission(_), None) => return self.error(Common::AuthRequired),
            (Mode::Submission(_), account) => account,
            (Mode::Inbound(_), _) => None,
        };
        if self.tx.is_some() {
            return self.error(Common::BadSequence("Nested MAIL command"));
        }
        if let Some(param) = unoffered_parameter(&from) {
            return self.error(Common::UnsupportedParameter(param.into()));
        }
        if from.size > self.shared.config.max_message_bytes {
            self.reply(Common::MessageTooBig);
            return Ok(());
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if from.address.contains(char::REPLACEMENT_CHARACTER) {
            return self.error(Common::BadSenderSyntax);
        }
        if !smtputf8 && !from.address.is_ascii() {
            self.reply(Common::NonAsciiAddress);
            return Ok(());
        }
        self.tx = Some(Transaction {
            account,
            mail_from: from.address,
            smtputf8,
            body_8bitmime: from.flags & MAIL_BODY_8BITMIME != 0,
            rcpt_to: Vec::new(),
        });
        // On submission AUTH already ended the setup; on the MX this does.
        self.setup_done();
        self.reply(Common::SenderOk);
        Ok(())
    }
}

/// The first parameter that was parsed but is not offered in EHLO
/// (RFC 5321 section 4.1.1.11: refuse, rather than silently ignore, what
/// the client might rely on). `AUTH=` is allowed and ignored (RFC 4954).
fn unoffered_parameter(from: &MailFrom<String>) -> Option<&'static str> {
    let flags = from.flags;
    if flags & MAIL_BODY_BINARYMIME != 0 {
        Some("BODY=BINARYMIME")
    } else if flags & (MAIL_RET_FULL | MAIL_RET_HDRS) != 0 {
        Some("RET")
    } else if flags & MAIL_REQUIRETLS != 0 {
        Some("REQUIRETLS")
    } else if flags & MAIL_CONPERM != 0 {
        Some("CONPERM")
    } else if flags & !(MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8) != 0 || from.by != 0 {
        Some("BY")
    } else if from.env_id.is_some() {
        Some("ENVID")
    } else if from.trans_id.is_some() {
        Some("TRANSID")
    } else if from.solicit.is_some() {
        Some("SOLICIT")
    } else if from.mtrk.is_some() {
        Some("MTRK")
    } else if from.hold_for != 0 || from.hold_until != 0 {
        Some("FUTURERELEASE")
    } else if from.mt_priority != 0 {
        Some("MT-PRIORITY")
    } else {
        None
    }
}
