//! One SMTP session, generic over the stream so that tests drive it in
//! memory. This file holds the state and the command loop; each command
//! group has its own file, in the order a client uses them.
//!
//! State machine: greeting → EHLO/HELO → (STARTTLS → EHLO) → AUTH →
//! MAIL → RCPT… → DATA → back to "authenticated, no transaction". A
//! command out of order gets `503 5.5.1` and changes nothing.
//!
//! The inbound (MX) mode is the same machine without the AUTH step: the
//! few places that differ (`ehlo.rs`, `auth.rs`, `mail.rs`, `rcpt.rs`,
//! `data.rs`, HELP) match on [`Mode`], everything else is shared.

mod auth;
mod data;
mod ehlo;
pub(crate) mod io;
mod mail;
mod misc;
mod rcpt;
mod starttls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Request;
use tidings_types::AccountId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::handler::Mode;
use crate::reply::{Common, Reply};
use crate::server::Shared;
use io::{Conn, Line, Stream};

/// How a session ended; for logs and tests. A client's misbehaviour is
/// never an error of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client said QUIT.
    Quit,
    /// The client closed the connection (possibly mid-DATA: then nothing
    /// was accepted).
    Disconnected,
    /// Reading or writing failed.
    Io(std::io::ErrorKind),
    /// Nothing from the client for `idle_timeout`.
    IdleTimeout,
    /// The session lasted `session_timeout`.
    SessionTimeout,
    /// The client had not authenticated (submission) or started a mail
    /// transaction (inbound MX) within `setup_timeout` of connecting.
    SetupTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The client made `max_errors` errors.
    TooManyErrors,
    /// Too many failed AUTH attempts in this session or from this IP.
    TooManyAuthFailures,
    /// The TLS handshake failed or timed out.
    TlsFailed,
}

impl SessionEnd {
    /// The last words to a client that is still listening.
    fn farewell(self, mode: &Mode) -> Option<Common> {
        match self {
            SessionEnd::SetupTimeout => Some(match mode {
                Mode::Submission(_) => Common::AuthTimeout,
                Mode::Inbound(_) => Common::MailTimeout,
            }),
            SessionEnd::IdleTimeout => Some(Common::IdleTimeout),
            SessionEnd::SessionTimeout => Some(Common::SessionTimeout),
            SessionEnd::Shutdown => Some(Common::ShuttingDown),
            SessionEnd::TooManyErrors => Some(Common::TooManyErrors),
            SessionEnd::TooManyAuthFailures => Some(Common::TooManyAuthFailures),
            SessionEnd::Quit
            | SessionEnd::Disconnected
            | SessionEnd::Io(_)
            | SessionEnd::TlsFailed => None,
        }
    }
}

/// What a command handler returns: go on, or end the session.
type Step = Result<(), SessionEnd>;

/// A mail transaction: from MAIL to the end of DATA (or RSET).
struct Transaction {
    /// The authenticated account (submission); `None` on an inbound MX.
    account: Option<AccountId>,
    mail_from: String,
    smtputf8: bool,
    body_8bitmime: bool,
    rcpt_to: Vec<String>,
}

pub(crate) struct Session<S> {
    conn: Conn<S>,
    shared: Arc<Shared>,
    client_ip: IpAddr,
    /// The EHLO/HELO argument, and whether it was EHLO.
    helo: Option<(String, bool)>,
    account: Option<AccountId>,
    tx: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
    /// When the session must end, whatever it does; until the setup is
    /// done, the connection's deadline is the earlier end of the setup.
    session_deadline: Instant,
    setup_done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) fn new(
        stream: Stream<S>,
        shared: Arc<Shared>,
        client_ip: IpAddr,
        started: Instant,
        shutdown: CancellationToken,
    ) -> Self {
        let cfg = &shared.config;
        // A timeout too large for the clock means "no limit".
        let far = |d: Duration| {
            started
                .checked_add(d)
                .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 24 * 3600))
        };
        let session_deadline = far(cfg.session_timeout);
        let setup_deadline = far(cfg.setup_timeout);
        let conn = if setup_deadline < session_deadline {
            Conn::new(
                stream,
                cfg.idle_timeout,
                setup_deadline,
                SessionEnd::SetupTimeout,
                shutdown,
            )
        } else {
            Conn::new(
                stream,
                cfg.idle_timeout,
                session_deadline,
                SessionEnd::SessionTimeout,
                shutdown,
            )
        };
        Self {
            conn,
            shared,
            client_ip,
            helo: None,
            account: None,
            tx: None,
            errors: 0,
            auth_failures: 0,
            session_deadline,
            setup_done: false,
        }
    }

    /// The client authenticated (submission) or started its first mail
    /// transaction (inbound MX): only the session timeout bounds it now.
    fn setup_done(&mut self) {
        if !self.setup_done {
            self.setup_done = true;
            self.conn
                .set_deadline(self.session_deadline, SessionEnd::SessionTimeout);
        }
    }

    /// Greet, serve commands until the session ends, say goodbye if the
    /// client is still there.
    pub(crate) async fn run(mut self) -> SessionEnd {
        self.shared.mode.session_started();
        let greeting = Reply::new(220, None, format!("{} ESMTP tidings", self.hostname()));
        self.conn.queue(&greeting);
        let end = loop {
            if let Err(end) = self.command().await {
                break end;
            }
        };
        if let Some(last) = end.farewell(&self.shared.mode) {
            self.conn.queue(&last.into());
        }
        self.conn.close().await;
        tracing::debug!(client = %self.client_ip, ?end, "smtp session ended");
        end
    }

    fn inbound(&self) -> bool {
        matches!(self.shared.mode, Mode::Inbound(_))
    }

    fn hostname(&self) -> &str {
        &self.shared.config.hostname
    }

    fn reply(&mut self, reply: impl Into<Reply>) {
        self.conn.queue(&reply.into());
    }

    /// Reply to a client error, and end the session once it has made too
    /// many.
    fn error(&mut self, reply: impl Into<Reply>) -> Step {
        self.reply(reply);
        self.errors += 1;
        if self.errors > self.shared.config.max_errors {
            return Err(SessionEnd::TooManyErrors);
        }
        Ok(())
    }

    async fn command(&mut self) -> Step {
        let max = self.shared.config.max_command_line;
        let line = match self.conn.read_line(max).await? {
            Line::Complete(line) => line,
            Line::TooLong { .. } => return self.error(Common::LineTooLong),
        };
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => return self.error(parse_error(e)),
        };
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::StartTls => self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to, rcpt::is_bare_postmaster(&line)).await,
            Request::Data => self.data().await,
            Request::Rset => self.rset(),
            Request::Noop { .. } => self.noop(),
            Request::Quit => self.quit(),
            Request::Help { .. } => self.help(),
            Request::Vrfy { .. } => self.vrfy(),
            Request::Expn { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.error(Common::NotImplemented),
            Request::Lhlo { .. } => self.error(Common::UnknownCommand),
        }
    }
}

fn parse_error(e: smtp_proto::Error) -> Common {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Common::UnknownCommand,
        E::InvalidSenderAddress => Common::BadSenderSyntax,
        E::InvalidRecipientAddress => Common::BadRecipientSyntax,
        E::SyntaxError { syntax } => Common::Syntax(syntax),
        E::InvalidParameter { param } => Common::InvalidParameter(param),
        E::UnsupportedParameter { param } => Common::UnsupportedParameter(param),
        E::NeedsMoreData { .. } | E::ResponseTooLong | E::InvalidResponse { .. } => {
            Common::UnknownCommand
        }
    }
}
