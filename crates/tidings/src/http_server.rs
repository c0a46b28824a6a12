//! The HTTP listener: the API, tracking links, `/healthz` and `/metrics`
//! served by hyper directly rather than by `axum::serve`, which cannot
//! bound how long a client takes. Every connection is bounded:
//!
//! - admitted within a total and a per-address limit
//!   ([`tidings_smtp::ConnectionLimiter`], as the SMTP listeners are);
//!   one over a limit is answered `503` with a JSON error and closed, and
//!   counted in `tidings_connections_refused_total{listener="http"}`
//!   (those admitted in `tidings_connections_open`);
//! - the request headers must arrive within the header-read timeout,
//!   counted from when the server starts waiting for them, so a keep-alive
//!   connection with no next request is closed after the same time
//!   (HTTP/1; hyper's `header_read_timeout`);
//! - a connection that moves no byte either way for the idle timeout (a
//!   stalled body, a client that stops reading its response, an idle
//!   HTTP/2 connection) is closed.
//!
//! Shutdown stops accepting, lets requests in flight finish (hyper's
//! graceful shutdown), and returns once every connection has closed.
//! Handlers see the client's address as `ConnectInfo<SocketAddr>`, as
//! with `axum::serve`.

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tidings_core::metrics::{Endpoint, Metrics, RefusalReason};
use tidings_smtp::{ConnectionLimiter, ConnectionPermit, Refusal};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How the HTTP listener bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serve `router` on `listener` until `shutdown`, then wait for the
/// connections to close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let admission = ConnectionLimiter::new(limits.max_connections, limits.max_connections_per_ip);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors despite the reserve, or a
                    // connection reset before it was accepted.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match admission.admit(peer.ip()) {
            Ok(permit) => {
                let conn = Connection {
                    stream,
                    peer,
                    open: Open::new(metrics.clone(), permit),
                    router: router.clone(),
                    limits,
                    shutdown: shutdown.clone(),
                };
                connections.spawn(conn.run());
            }
            Err(why) => {
                tracing::debug!(client = %peer.ip(), ?why, "HTTP connection refused");
                metrics.connection_refused(Endpoint::Http, reason(why));
                refuse(stream, why);
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The metric's label for a refusal.
pub(crate) fn reason(why: Refusal) -> RefusalReason {
    match why {
        Refusal::TotalLimit => RefusalReason::TotalLimit,
        Refusal::PerIpLimit => RefusalReason::PerIpLimit,
    }
}

/// Say `503` if the socket takes it at once, and close: a refused
/// connection holds its descriptor for no longer than this.
fn refuse(stream: TcpStream, why: Refusal) {
    let (code, message) = match why {
        Refusal::TotalLimit => (
            "too_many_connections",
            "Too many connections, try again later",
        ),
        Refusal::PerIpLimit => (
            "too_many_connections_from_address",
            "Too many connections from your address",
        ),
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// One admitted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    open: Open,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self) {
        let _open = self.open;
        let _ = self.stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            inner: self.stream,
            activity: activity.clone(),
        });
        let (router, peer) = (self.router, self.peer);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        let mut conn = pin!(builder.serve_connection(io, service));
        let idle = self.limits.idle_timeout;
        let mut closing = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(client = %peer, error = %e, "HTTP connection ended");
                    }
                    return;
                }
                _ = self.shutdown.cancelled(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep_until(activity.last() + idle) => {
                    if activity.last() + idle <= Instant::now() {
                        tracing::debug!(client = %peer, "HTTP connection idle: closed");
                        return;
                    }
                }
            }
        }
    }
}

/// An admitted connection's slot, counted in the open-connections gauge
/// while it is held.
struct Open {
    metrics: Arc<Metrics>,
    _permit: ConnectionPermit,
}

impl Open {
    fn new(metrics: Arc<Metrics>, permit: ConnectionPermit) -> Self {
        metrics.connection_opened(Endpoint::Http);
        Self {
            metrics,
            _permit: permit,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connection_closed(Endpoint::Http);
    }
}

/// When a connection last moved a byte.
#[derive(Clone)]
struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// A stream that records its activity.
struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
