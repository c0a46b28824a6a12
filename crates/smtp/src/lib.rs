//! SMTP server sessions: the submission listener and the inbound MX.
//!
//! The crate owns the protocol and nothing else. Who may send, which
//! recipients are allowed, and how a message is stored are decided behind
//! [`SubmissionHandler`] (submission: the application's one accept path)
//! and [`InboundHandler`] (the MX of the bounce domain: VERP addresses
//! and feedback-loop addresses); this crate never touches the store.
//!
//! Two modes, one session. [`SmtpServer::new`] is a submission server,
//! [`SmtpServer::inbound`] an inbound MX; both run the same session code,
//! which differs only where the modes must:
//!
//! | | submission | inbound MX |
//! |---|---|---|
//! | AUTH | offered over TLS, required before MAIL | not offered (`502`), not needed |
//! | STARTTLS | offered, required for AUTH | offered, optional |
//! | `MAIL FROM:<>` | accepted after AUTH | accepted (every DSN uses it) |
//! | RCPT | [`SubmissionHandler::check_recipient`] | [`InboundHandler::check_recipient`]: not ours is `550 5.1.1`; `<Postmaster>` without a domain is passed as `postmaster` (RFC 5321 4.5.1) |
//! | 8-bit headers without SMTPUTF8 | `550 5.6.7` | accepted (never relayed) |
//!
//! Everything else — limits, timeouts, errors, pipelining, DATA framing
//! and unstuffing — is the same code in both.
//!
//! Design decisions:
//!
//! - **Generic over the stream.** A session runs on any
//!   `AsyncRead + AsyncWrite + Unpin + Send`, so tests drive it over
//!   `tokio::io::duplex` and listeners hand it a `TcpStream`. STARTTLS
//!   upgrades the stream in place (`session/io.rs`), so one session type
//!   covers plain, upgraded and implicit TLS.
//! - **One file per command group** (`session/ehlo.rs`, `auth.rs`,
//!   `mail.rs`, `rcpt.rs`, `data.rs`, …), as in Stalwart's
//!   `smtp/src/inbound`. Command lines are framed here, with a length cap,
//!   and parsed by `smtp-proto`; DATA is framed and unstuffed here.
//! - **Durable before 250.** The session answers `250` to DATA only after
//!   the handler's `accept` returned `Ok`; a refused, oversized or
//!   interrupted message never reaches the handler.
//! - **Never a relay.** On submission MAIL needs an authenticated account,
//!   and AUTH is offered and accepted only over TLS. On the inbound MX
//!   anyone may send, but only to recipients the handler claims, checked
//!   one by one at RCPT; a well-formed foreign address is refused there
//!   like any other, and no message is ever forwarded.
//! - **Everything is bounded**: line lengths, message size (read to the
//!   end, then refused, never stored), recipients, errors, idle time,
//!   session time, the time to get going (`setup_timeout`: until AUTH on
//!   submission, until the first MAIL on the MX), connections in all and
//!   per client address ([`ConnectionLimiter`], which the binary's HTTP
//!   listener uses too), and AUTH failures per session and per IP with a
//!   growing delay. Every reply the session gives is named once in
//!   [`Common`], with its code.
//! - **Replies in order, flushed lazily.** Replies are queued and written
//!   only when the client has nothing more buffered, which is all
//!   PIPELINING needs.
//!
//! Choices where the RFCs leave room: a line longer than 998 octets, a
//! line not ended by CRLF, a CR not followed by LF, or a NUL octet in DATA
//! makes the message `554 5.6.0` (read to its end first; only CRLF.CRLF
//! ends DATA, so no SMTP smuggling), in both modes — an MTA speaking SMTP
//! sends CR and LF only as CRLF (RFC 5321 section 2.3.8), and passing a
//! bare LF or CR on would let a server further along read `LF.LF` or
//! `CR.CR` as the end of the data. Non-ASCII addresses without `SMTPUTF8`
//! get `553 5.6.7`; 8-bit header octets without it `550 5.6.7` on
//! submission, accepted on the inbound MX; an 8-bit body without
//! `BODY=8BITMIME` is accepted and flagged in [`Submission::body_8bit`];
//! parameters that EHLO does not offer (DSN, REQUIRETLS, …) get
//! `555 5.5.4` rather than being ignored; commands pipelined after
//! STARTTLS are discarded.

mod config;
mod error;
mod handler;
mod limits;
mod reply;
mod server;
mod session;
mod throttle;
mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{AuthLimits, SmtpConfig, TlsSource};
pub use error::SmtpError;
pub use handler::{InboundHandler, InboundMessage, Submission, SubmissionHandler};
pub use limits::{client_key, ConnectionLimiter, ConnectionPermit, Refusal};
pub use reply::{Common, Reply};
pub use server::SmtpServer;
pub use session::SessionEnd;

/// Serve SMTP submission with STARTTLS on `listener` until `shutdown`.
/// To serve several listeners with one certificate and one AUTH throttle,
/// build one [`SmtpServer`] and call its methods instead.
pub async fn serve(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    handler: Arc<dyn SubmissionHandler>,
    shutdown: CancellationToken,
) -> Result<(), SmtpError> {
    SmtpServer::new(config, handler)?
        .serve(listener, shutdown)
        .await;
    Ok(())
}

/// Serve SMTP submission over implicit TLS (port 465 style) until
/// `shutdown`.
pub async fn serve_implicit_tls(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    handler: Arc<dyn SubmissionHandler>,
    shutdown: CancellationToken,
) -> Result<(), SmtpError> {
    SmtpServer::new(config, handler)?
        .serve_implicit_tls(listener, shutdown)
        .await;
    Ok(())
}

/// Serve the inbound MX (port 25 style: STARTTLS offered, no AUTH) on
/// `listener` until `shutdown`. To serve several listeners with one
/// certificate and one connection limit, build one server with
/// [`SmtpServer::inbound`] and call its methods instead.
pub async fn serve_inbound(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    handler: Arc<dyn InboundHandler>,
    shutdown: CancellationToken,
) -> Result<(), SmtpError> {
    SmtpServer::inbound(config, handler)?
        .serve(listener, shutdown)
        .await;
    Ok(())
}
