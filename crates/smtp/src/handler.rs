//! The boundary to the rest of tidings: the session decides SMTP, the
//! handler decides who may send what, and stores it. One handler trait per
//! mode: [`SubmissionHandler`] for the submission listener,
//! [`InboundHandler`] for the inbound MX.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use tidings_types::AccountId;

use crate::limits::Refusal;
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

    /// A session began (for metrics; by default nothing).
    fn session_started(&self) {}

    /// An AUTH attempt failed: wrong credentials, a refused exchange, or a
    /// client IP that is being throttled (for metrics; by default nothing).
    fn auth_failed(&self) {}

    /// A connection was turned away at a connection limit (for metrics; by
    /// default nothing).
    fn connection_refused(&self, _why: Refusal) {}

    /// A connection was admitted (for metrics; by default nothing). Each
    /// is followed by one [`Self::connection_closed`] when it ends, however
    /// it ends.
    fn connection_opened(&self) {}

    /// An admitted connection ended (for metrics; by default nothing).
    fn connection_closed(&self) {}
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
    /// line longer than 998 octets, no CR or LF but as CRLF, no NUL, at
    /// most `max_message_bytes`.
    pub raw: Bytes,
    /// The client declared `SMTPUTF8`: addresses and headers may be UTF-8.
    pub smtputf8: bool,
    /// The client declared `BODY=8BITMIME`, or the body has octets over 127
    /// anyway (accepted, as most servers do): the next hop must be told.
    pub body_8bit: bool,
    pub client_ip: IpAddr,
    /// The message came over TLS (always true for submission, since AUTH
    /// needs TLS).
    pub tls: bool,
}

/// What an inbound (MX) session asks of the application. Anyone may
/// connect and send without AUTH, so this is what keeps the MX from being
/// a relay: a recipient exists for the session only once
/// [`InboundHandler::check_recipient`] returned `Ok`, and a message only
/// once [`InboundHandler::accept`] did.
#[async_trait::async_trait]
pub trait InboundHandler: Send + Sync + 'static {
    /// Is this RCPT one tidings receives mail for (a valid VERP bounce
    /// address, or a feedback-loop address)? Its syntax is already checked,
    /// and it is ASCII unless the transaction declared SMTPUTF8. Anything
    /// else, however well formed, must be refused: `Err` gives the reply,
    /// normally [`crate::Common::NoSuchUser`] (`550 5.1.1`). RFC 5321
    /// (section 4.5.1) asks an MX to take mail for `postmaster`, any case,
    /// at each of its domains and without a domain (`RCPT TO:<Postmaster>`,
    /// which arrives here as `postmaster`).
    async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply>;

    /// Durably take the message. Only after this returns `Ok` does the
    /// session answer `250`, with the returned id in the text. `Err` gives
    /// the reply: [`crate::Common::StorageFailure`] (`451 4.3.0`) when the
    /// store failed.
    async fn accept(&self, message: InboundMessage) -> Result<String, Reply>;

    /// A session began (for metrics; by default nothing).
    fn session_started(&self) {}

    /// A connection was turned away at a connection limit (for metrics; by
    /// default nothing).
    fn connection_refused(&self, _why: Refusal) {}

    /// A connection was admitted (for metrics; by default nothing). Each
    /// is followed by one [`Self::connection_closed`] when it ends, however
    /// it ends.
    fn connection_opened(&self) {}

    /// An admitted connection ended (for metrics; by default nothing).
    fn connection_closed(&self) {}
}

/// One message received by the inbound MX: usually a delivery status
/// notification or a feedback-loop report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The envelope sender, without angle brackets; empty for `<>`, which
    /// is what every DSN carries (RFC 5321 section 4.5.5).
    pub mail_from: String,
    /// The envelope recipients, each accepted by
    /// [`InboundHandler::check_recipient`], duplicates removed, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received: dot-unstuffed, every line ended by CRLF, no
    /// line longer than 998 octets, no CR or LF but as CRLF, no NUL, at
    /// most `max_message_bytes`. 8-bit octets are passed through too, in the headers as well (with or
    /// without SMTPUTF8): nothing received here is relayed.
    pub raw: Bytes,
    pub client_ip: IpAddr,
    /// The message came over TLS (STARTTLS is offered, never required).
    pub tls: bool,
    /// The EHLO or HELO argument the client gave.
    pub helo: String,
}

/// Which listener a server is, with its handler.
#[derive(Clone)]
pub(crate) enum Mode {
    /// Submission: AUTH (over TLS) before MAIL.
    Submission(Arc<dyn SubmissionHandler>),
    /// Inbound MX: no AUTH; every recipient checked by the handler.
    Inbound(Arc<dyn InboundHandler>),
}

impl Mode {
    pub(crate) fn session_started(&self) {
        match self {
            Mode::Submission(h) => h.session_started(),
            Mode::Inbound(h) => h.session_started(),
        }
    }

    pub(crate) fn connection_refused(&self, why: Refusal) {
        match self {
            Mode::Submission(h) => h.connection_refused(why),
            Mode::Inbound(h) => h.connection_refused(why),
        }
    }

    pub(crate) fn connection_opened(&self) {
        match self {
            Mode::Submission(h) => h.connection_opened(),
            Mode::Inbound(h) => h.connection_opened(),
        }
    }

    pub(crate) fn connection_closed(&self) {
        match self {
            Mode::Submission(h) => h.connection_closed(),
            Mode::Inbound(h) => h.connection_closed(),
        }
    }

    pub(crate) fn auth_failed(&self) {
        if let Mode::Submission(h) = self {
            h.auth_failed();
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Mode::Submission(_) => "submission",
            Mode::Inbound(_) => "inbound",
        }
    }
}
