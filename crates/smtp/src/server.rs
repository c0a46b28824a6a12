//! Listeners: accept connections, bound how many are served at once (in
//! all and per client address), start a session for each, and on shutdown
//! stop accepting and wait for the sessions (which answer `421` at their
//! next wait) to end.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::SmtpConfig;
use crate::error::SmtpError;
use crate::handler::{InboundHandler, Mode, SubmissionHandler};
use crate::limits::{ConnectionLimiter, ConnectionPermit, Refusal};
use crate::reply::{Common, Reply};
use crate::session::io::Stream;
use crate::session::{Session, SessionEnd};
use crate::throttle::AuthThrottle;
use crate::tls::ServerTls;

/// What every session of a server shares.
pub(crate) struct Shared {
    pub(crate) config: Arc<SmtpConfig>,
    pub(crate) mode: Mode,
    pub(crate) tls: ServerTls,
    pub(crate) throttle: AuthThrottle,
}

/// An SMTP server, either submission ([`SmtpServer::new`]) or inbound MX
/// ([`SmtpServer::inbound`]): one mode, one TLS certificate, one AUTH
/// throttle and one set of connection limits, for any number of listeners
/// (typically, for submission, a STARTTLS one on 587 and an implicit-TLS
/// one on 465; for inbound, a STARTTLS one on 25). Both modes run the same
/// session code. Cheap to clone.
#[derive(Clone)]
pub struct SmtpServer {
    shared: Arc<Shared>,
    connections: ConnectionLimiter,
}

impl SmtpServer {
    /// A submission server: AUTH, over TLS only, before MAIL. Loads (or,
    /// with [`crate::TlsSource::SelfSigned`], generates) the certificate.
    /// Fails only on TLS set-up.
    pub fn new(
        config: Arc<SmtpConfig>,
        handler: Arc<dyn SubmissionHandler>,
    ) -> Result<Self, SmtpError> {
        Self::with_mode(config, Mode::Submission(handler))
    }

    /// An inbound (MX) server: AUTH is neither offered nor needed, the null
    /// sender `<>` is accepted, STARTTLS is offered but optional, and every
    /// recipient must pass [`InboundHandler::check_recipient`] at RCPT
    /// time. Every other limit is that of submission. Fails only on TLS
    /// set-up.
    pub fn inbound(
        config: Arc<SmtpConfig>,
        handler: Arc<dyn InboundHandler>,
    ) -> Result<Self, SmtpError> {
        Self::with_mode(config, Mode::Inbound(handler))
    }

    fn with_mode(config: Arc<SmtpConfig>, mode: Mode) -> Result<Self, SmtpError> {
        let tls = ServerTls::load(&config.tls, &config.hostname)?;
        let connections =
            ConnectionLimiter::new(config.max_connections, config.max_connections_per_ip);
        let throttle = AuthThrottle::new(config.auth.clone());
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                mode,
                tls,
                throttle,
            }),
            connections,
        })
    }

    /// The certificate chain presented to clients, leaf first.
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.shared.tls.chain
    }

    /// Whether this is an inbound (MX) server.
    pub fn is_inbound(&self) -> bool {
        matches!(self.shared.mode, Mode::Inbound(_))
    }

    /// Serve a plain listener (port 587 style: STARTTLS, then AUTH; or
    /// port 25 for an inbound server) until `shutdown`, then wait for its
    /// sessions to end.
    pub async fn serve(&self, listener: TcpListener, shutdown: CancellationToken) {
        self.accept_loop(listener, shutdown, false).await
    }

    /// Serve an implicit-TLS listener (port 465 style: the handshake comes
    /// first) until `shutdown`, then wait for its sessions to end. Meant
    /// for submission; MTAs do not use implicit TLS to reach an MX.
    pub async fn serve_implicit_tls(&self, listener: TcpListener, shutdown: CancellationToken) {
        self.accept_loop(listener, shutdown, true).await
    }

    /// Run one session on a plain stream (STARTTLS offered). This is what
    /// [`SmtpServer::serve`] runs per connection; tests call it over
    /// `tokio::io::duplex`. The connection limit does not apply.
    pub async fn session<S>(
        &self,
        stream: S,
        client_ip: IpAddr,
        shutdown: CancellationToken,
    ) -> SessionEnd
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        Session::new(
            Stream::Plain(stream),
            self.shared.clone(),
            client_ip,
            Instant::now(),
            shutdown,
        )
        .run()
        .await
    }

    /// Run one session on a stream whose first bytes are a TLS handshake.
    pub async fn session_implicit_tls<S>(
        &self,
        stream: S,
        client_ip: IpAddr,
        shutdown: CancellationToken,
    ) -> SessionEnd
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let started = Instant::now();
        let handshake = tokio::time::timeout(
            self.shared.config.tls_handshake_timeout,
            self.shared.tls.acceptor.accept(stream),
        );
        let tls = tokio::select! {
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(client = %client_ip, error = %e, "TLS handshake failed");
                    return SessionEnd::TlsFailed;
                }
                Err(_) => return SessionEnd::TlsFailed,
            },
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
        };
        Session::new(
            Stream::Tls(Box::new(tls)),
            self.shared.clone(),
            client_ip,
            started,
            shutdown,
        )
        .run()
        .await
    }

    async fn accept_loop(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
        implicit_tls: bool,
    ) {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "smtp session task failed");
                    }
                }
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Usually out of file descriptors: give sessions
                            // a moment to end rather than spin.
                            tracing::warn!(error = %e, "smtp accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let permit = match self.connections.admit(peer.ip()) {
                        Ok(permit) => permit,
                        Err(why) => {
                            tracing::debug!(client = %peer.ip(), ?why, mode = self.shared.mode.name(), "smtp connection refused");
                            self.shared.mode.connection_refused(why);
                            sessions.spawn(refuse(stream, why));
                            continue;
                        }
                    };
                    let server = self.clone();
                    let token = shutdown.clone();
                    let span = tracing::info_span!(
                        "smtp",
                        mode = self.shared.mode.name(),
                        client = %peer.ip(),
                        tls = implicit_tls,
                    );
                    sessions.spawn(
                        async move {
                            let _open = Open::new(server.shared.clone(), permit);
                            if implicit_tls {
                                server.session_implicit_tls(stream, peer.ip(), token).await;
                            } else {
                                server.session(stream, peer.ip(), token).await;
                            }
                        }
                        .instrument(span),
                    );
                }
            }
        }
        drop(listener);
        while let Some(done) = sessions.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "smtp session task failed");
            }
        }
    }
}

/// An admitted connection, told to the handler when it opens and closes.
struct Open {
    shared: Arc<Shared>,
    _permit: ConnectionPermit,
}

impl Open {
    fn new(shared: Arc<Shared>, permit: ConnectionPermit) -> Self {
        shared.mode.connection_opened();
        Self {
            shared,
            _permit: permit,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.mode.connection_closed();
    }
}

/// Tell a connection over a limit to come back later.
async fn refuse(mut stream: TcpStream, why: Refusal) {
    let mut out = Vec::new();
    let reply = match why {
        Refusal::TotalLimit => Common::TooManyConnections,
        Refusal::PerIpLimit => Common::TooManyConnectionsFromIp,
    };
    Reply::from(reply).write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
}
