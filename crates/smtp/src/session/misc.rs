//! RSET, NOOP, QUIT, HELP and VRFY: the commands that change little.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, SessionEnd, Step};
use crate::reply::Common;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Abort the transaction; the greeting and authentication stay.
    pub(super) fn rset(&mut self) -> Step {
        self.tx = None;
        self.reply(Common::Ok);
        Ok(())
    }

    pub(super) fn noop(&mut self) -> Step {
        self.reply(Common::Ok);
        Ok(())
    }

    pub(super) fn quit(&mut self) -> Step {
        self.reply(Common::Bye);
        Err(SessionEnd::Quit)
    }

    pub(super) fn help(&mut self) -> Step {
        self.reply(if self.inbound() {
            Common::InboundHelp
        } else {
            Common::Help
        });
        Ok(())
    }

    /// `252`: addresses are never confirmed, so VRFY tells nobody which
    /// exist (RFC 5321 section 3.5.3).
    pub(super) fn vrfy(&mut self) -> Step {
        self.reply(Common::CannotVerify);
        Ok(())
    }
}
