//! The connection under a session: a stream that may be upgraded to TLS in
//! place, a bounded read buffer split into lines, and a write buffer that
//! is flushed only when the client has nothing more buffered (so pipelined
//! commands are answered in order, in as few packets as possible).
//! Every wait here is bounded by the idle timeout, the deadline (the end
//! of the setup phase, then of the session) and the shutdown token.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::SessionEnd;
use crate::reply::Reply;

const READ_CHUNK: usize = 8 * 1024;

/// The client's stream, plain or TLS.
pub(crate) enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only while a handshake runs, or after it failed.
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream lost in TLS upgrade")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

/// One line from the client.
pub(crate) enum Line {
    /// The line with its LF (and CR, if sent).
    Complete(Bytes),
    /// The line was longer than allowed and has been discarded up to and
    /// including its LF. `crlf` tells whether that LF followed a CR.
    TooLong { crlf: bool },
}

pub(crate) struct Conn<S> {
    pub(crate) stream: Stream<S>,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    idle: Duration,
    deadline: Instant,
    /// How the session ends when `deadline` passes.
    deadline_end: SessionEnd,
    shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(
        stream: Stream<S>,
        idle: Duration,
        deadline: Instant,
        deadline_end: SessionEnd,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(512),
            idle,
            deadline,
            deadline_end,
            shutdown,
        }
    }

    /// From now on, every wait ends at `at`, and the session with `end`.
    pub(crate) fn set_deadline(&mut self, at: Instant, end: SessionEnd) {
        self.deadline = at;
        self.deadline_end = end;
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Queue a reply; it is sent before the session next waits for input.
    pub(crate) fn queue(&mut self, reply: &Reply) {
        reply.write_to(&mut self.wbuf);
    }

    /// The next line, at most `max` octets with its line end.
    pub(crate) async fn read_line(&mut self, max: usize) -> Result<Line, SessionEnd> {
        let mut discarding = false;
        let mut last = 0u8;
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.rbuf) {
                let line = self.rbuf.split_to(pos + 1).freeze();
                if discarding || line.len() > max {
                    let before_lf = if pos > 0 { line[pos - 1] } else { last };
                    return Ok(Line::TooLong {
                        crlf: before_lf == b'\r',
                    });
                }
                return Ok(Line::Complete(line));
            }
            if self.rbuf.len() > max {
                discarding = true;
            }
            if discarding {
                if let Some(&b) = self.rbuf.last() {
                    last = b;
                }
                self.rbuf.clear();
            }
            self.fill().await?;
        }
    }

    /// Wait, but not past the session deadline or shutdown.
    pub(crate) async fn pause(&mut self, d: Duration) -> Result<(), SessionEnd> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = tokio::time::sleep_until(self.deadline) => Err(self.deadline_end),
            _ = self.shutdown.cancelled() => Err(SessionEnd::Shutdown),
        }
    }

    /// Drop whatever the client sent ahead (after STARTTLS it must not be
    /// read as if it had come over TLS).
    pub(crate) fn discard_input(&mut self) -> usize {
        let n = self.rbuf.len();
        self.rbuf.clear();
        n
    }

    /// Flush the replies, then read more; every wait is bounded.
    async fn fill(&mut self) -> Result<(), SessionEnd> {
        self.flush().await?;
        self.rbuf.reserve(READ_CHUNK);
        let read = tokio::select! {
            r = tokio::time::timeout(self.idle, self.stream.read_buf(&mut self.rbuf)) => r,
            _ = tokio::time::sleep_until(self.deadline) => return Err(self.deadline_end),
            _ = self.shutdown.cancelled() => return Err(SessionEnd::Shutdown),
        };
        match read {
            Err(_) => Err(SessionEnd::IdleTimeout),
            Ok(Ok(0)) => Err(SessionEnd::Disconnected),
            // A TLS peer that closed without close_notify.
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(SessionEnd::Disconnected),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SessionEnd::Io(e.kind())),
        }
    }

    /// Send the queued replies; the client must take them within the idle
    /// timeout.
    pub(crate) async fn flush(&mut self) -> Result<(), SessionEnd> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let (deadline, deadline_end) = (self.deadline, self.deadline_end);
        let write = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        let written = tokio::select! {
            w = tokio::time::timeout(self.idle, write) => w,
            _ = tokio::time::sleep_until(deadline) => return Err(deadline_end),
        };
        match written {
            Err(_) => Err(SessionEnd::IdleTimeout),
            Ok(Err(e)) => Err(SessionEnd::Io(e.kind())),
            Ok(Ok(())) => {
                self.wbuf.clear();
                Ok(())
            }
        }
    }

    /// Replace the plain stream by a TLS one, within `timeout`.
    pub(crate) async fn upgrade(
        &mut self,
        acceptor: &TlsAcceptor,
        timeout: Duration,
    ) -> Result<(), SessionEnd> {
        let Stream::Plain(plain) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(SessionEnd::TlsFailed);
        };
        let handshake = tokio::select! {
            h = tokio::time::timeout(timeout, acceptor.accept(plain)) => h,
            _ = tokio::time::sleep_until(self.deadline) => return Err(self.deadline_end),
        };
        match handshake {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                Err(SessionEnd::TlsFailed)
            }
            Err(_) => Err(SessionEnd::TlsFailed),
        }
    }

    /// Best effort: send what is queued and close, without waiting long for
    /// a client that has stopped reading (the deadline may have passed:
    /// the last words get their few seconds all the same).
    pub(crate) async fn close(&mut self) {
        self.idle = self.idle.min(Duration::from_secs(5));
        self.deadline = Instant::now() + self.idle;
        let _ = self.flush().await;
        let _ = tokio::time::timeout(self.idle, self.stream.shutdown()).await;
    }
}
