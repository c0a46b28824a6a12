//! The boundary to the rest of tidings: the session decides SMTP, the
//! handler decides who may send what, and stores it.

use std::net::IpAddr;

use bytes::Bytes;
use tidings_types::AccountId;

use crate::reply::Reply;

/// What a session asks of the application. The session never relays on
/// its own: a message exists only once [`SubmissionHandler::accept`]
/// returned `Ok`, and the client hears `250` only then.
#[async_trait::async_trait]
pub trait SubmissionHandler: Send + Sync + 'static {
    /// Check SMTP credentials; the account the user belongs to. Called only
    /// on a TLS connection, and not at all for a client IP that is being
    /// throttled.
    async fn authenticate(&self, username: &str, password: &str) -> Option<AccountId>;

    /// Check one RCPT TO before DATA (its syntax is already checked, and it
    /// is ASCII unless the transaction declared SMTPUTF8). `Err` gives the
    /// reply to send, e.g. [`crate::Common::RecipientRejected`].
    async fn check_recipient(&self, account: AccountId, rcpt: &str) -> Result<(), Reply>;

    /// Durably accept a message. Only after this returns `Ok` does the
    /// session answer `250`, with the returned message id in the text. `Err`
    /// gives the reply: [`crate::Common::StorageFailure`] (`451 4.3.0`) when
    /// the store failed, [`crate::Common::Unparseable`] (`554 5.6.0`) for a
    /// message that cannot be parsed.
    async fn accept(&self, submission: Submission) -> Result<String, Reply>;
}

/// One message as the client submitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The authenticated account.
    pub account: AccountId,
    /// The envelope sender, without angle brackets; empty for `<>`.
    pub mail_from: String,
    /// The envelope recipients, each accepted by
    /// [`SubmissionHandler::check_recipient`], duplicates removed, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received: dot-unstuffed, every line ended by CRLF, no
    /// line longer than 998 octets, at most `max_message_bytes`.
    pub raw: Bytes,
    /// The client declared `SMTPUTF8`: addresses and headers may be UTF-8.
    pub smtputf8: bool,
    /// The client declared `BODY=8BITMIME`, or the body has octets over 127
    /// anyway (accepted, as most servers do): the next hop must be told.
    pub body_8bit: bool,
    pub client_ip: IpAddr,
    /// The message came over TLS (always true for submission, since AUTH
    /// needs TLS; kept for the inbound MX).
    pub tls: bool,
}
