//! SMTP server sessions: the submission listener now, the inbound MX later.
//!
//! The crate owns the protocol and nothing else. Who may send, which
//! recipients are allowed, and how a message is stored are decided behind
//! [`SubmissionHandler`], which the application implements over its one
//! accept path; this crate never touches the store.
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
//!   [`SubmissionHandler::accept`] returned `Ok`; a refused, oversized or
//!   interrupted message never reaches the handler.
//! - **Never a relay.** MAIL needs an authenticated account, and AUTH is
//!   offered and accepted only over TLS.
//! - **Everything is bounded**: line lengths, message size (read to the
//!   end, then refused, never stored), recipients, errors, idle time,
//!   session time, connections, and AUTH failures per session and per IP
//!   with a growing delay. Every reply the session gives is named once in
//!   [`Common`], with its code.
//! - **Replies in order, flushed lazily.** Replies are queued and written
//!   only when the client has nothing more buffered, which is all
//!   PIPELINING needs.
//!
//! Choices where the RFCs leave room: a line longer than 998 octets or a
//! line not ended by CRLF in DATA makes the message `554 5.6.0` (read to its
//! end first; only CRLF.CRLF ends DATA, so no SMTP smuggling); non-ASCII
//! addresses without `SMTPUTF8` get `553 5.6.7`, and 8-bit header octets
//! without it `550 5.6.7`; an 8-bit body without `BODY=8BITMIME` is
//! accepted and flagged in [`Submission::body_8bit`]; parameters that EHLO
//! does not offer (DSN, REQUIRETLS, …) get `555 5.5.4` rather than being
//! ignored; commands pipelined after STARTTLS are discarded.

mod config;
mod error;
mod handler;
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
pub use handler::{Submission, SubmissionHandler};
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
