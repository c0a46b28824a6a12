//! A small SMTP client: enough of RFC 5321 to deliver one message to
//! several recipients, with STARTTLS (RFC 3207) and AUTH PLAIN.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use crate::reply::Reply;
use crate::reply::{ReplyError, ReplyReader, MAX_LINE};
use crate::tls::TlsPolicy;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("the server broke the protocol: {0}")]
    Protocol(#[from] ReplyError),
    #[error("TLS failed: {0}")]
    Tls(String),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open SMTP session.
pub struct Session {
    io: BufReader<Box<dyn Stream>>,
    /// The session runs over TLS (STARTTLS succeeded).
    pub tls: bool,
    pub extensions: Vec<String>,
    timeout: Duration,
}

impl Session {
    /// Connect, read the greeting, EHLO, and upgrade with STARTTLS under
    /// `tls` when offered (`None`: never). Whether the session ended up
    /// encrypted is [`Session::tls`]; a TLS handshake that fails (with a
    /// verifying policy, a certificate not trusted) is an error.
    pub async fn connect(
        addr: std::net::SocketAddr,
        server_name: &str,
        helo: &str,
        tls: Option<&TlsPolicy>,
        timeout: Duration,
    ) -> Result<(Session, Reply), ClientError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let mut s = Session {
            io: BufReader::new(Box::new(tcp)),
            tls: false,
            extensions: Vec::new(),
            timeout,
        };
        let greeting = s.read_reply().await?;
        if greeting.code != 220 {
            return Ok((s, greeting));
        }
        let ehlo = s.ehlo(helo).await?;
        if !ehlo.is_ok() {
            return Ok((s, ehlo));
        }
        if let Some(policy) = tls.filter(|_| s.has("STARTTLS")) {
            let r = s.command("STARTTLS").await?;
            if r.code == 220 {
                s = s.upgrade(policy, server_name).await?;
                let ehlo = s.ehlo(helo).await?;
                if !ehlo.is_ok() {
                    return Ok((s, ehlo));
                }
            }
        }
        Ok((s, greeting))
    }

    async fn upgrade(self, policy: &TlsPolicy, server_name: &str) -> Result<Session, ClientError> {
        let name = policy.server_name(server_name).ok_or_else(|| {
            ClientError::Tls(format!(
                "{server_name} is not a name a certificate can carry"
            ))
        })?;
        let inner = self.io.into_inner();
        let tls = tokio::time::timeout(self.timeout, policy.connector().connect(name, inner))
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Session {
            io: BufReader::new(Box::new(tls)),
            tls: true,
            extensions: Vec::new(),
            timeout: self.timeout,
        })
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Reply, ClientError> {
        self.write(&format!("EHLO {helo}\r\n")).await?;
        let (reply, lines) = self.read_reply_lines().await?;
        if reply.is_ok() {
            self.extensions = lines
                .iter()
                .skip(1)
                .map(|l| l.to_ascii_uppercase())
                .collect();
        }
        Ok(reply)
    }

    pub fn has(&self, ext: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.split_whitespace().next() == Some(ext))
    }

    /// AUTH PLAIN with a user and password.
    pub async fn auth_plain(&mut self, user: &str, pass: &str) -> Result<Reply, ClientError> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        self.command(&format!("AUTH PLAIN {token}")).await
    }

    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.write(&format!("{line}\r\n")).await?;
        self.read_reply().await
    }

    /// Send the message after a 354, dot-stuffed, ending with `.`.
    pub async fn data(&mut self, raw: &[u8]) -> Result<Reply, ClientError> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
        self.message(raw).await
    }

    /// Several commands in one write (PIPELINING, RFC 2920): each line is
    /// one command without its CRLF. The replies are read with
    /// [`Session::reply`], one per command, in order.
    pub async fn pipeline(&mut self, lines: &[&str]) -> Result<(), ClientError> {
        let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for l in lines {
            out.push_str(l);
            out.push_str("\r\n");
        }
        self.write(&out).await
    }

    /// The next reply.
    pub async fn reply(&mut self) -> Result<Reply, ClientError> {
        self.read_reply().await
    }

    /// The message itself, once DATA was answered 354: dot-stuffed, bare
    /// LFs made CRLF, ending with `.`; the server's reply.
    pub async fn message(&mut self, raw: &[u8]) -> Result<Reply, ClientError> {
        let out = dot_stuffed(raw);
        let w = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            w.write_all(&out).await?;
            w.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout)??;
        self.read_reply().await
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn write(&mut self, s: &str) -> Result<(), ClientError> {
        let w = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            w.write_all(s.as_bytes()).await?;
            w.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout)??;
        Ok(())
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        Ok(self.read_reply_lines().await?.0)
    }

    async fn read_reply_lines(&mut self) -> Result<(Reply, Vec<String>), ClientError> {
        let mut reader = ReplyReader::default();
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            let n = tokio::time::timeout(
                self.timeout,
                (&mut self.io)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line),
            )
            .await
            .map_err(|_| ClientError::Timeout)??;
            if !line.ends_with(b"\n") {
                return Err(if n == MAX_LINE {
                    ReplyError::LineTooLong.into()
                } else {
                    ClientError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
            if let Some(done) = reader.push(&line)? {
                return Ok(done);
            }
        }
    }
}

/// `raw` as DATA carries it: lines starting with `.` get another, bare LFs
/// become CRLF, and `.` ends it.
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 50 + 8);
    let mut rest = raw;
    // A line at a time: the copy is a memcpy, not a loop over bytes.
    while let Some(&first) = rest.first() {
        if first == b'.' {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let line = &rest[..i];
                out.extend_from_slice(line);
                if !line.ends_with(b"\r") {
                    out.push(b'\r');
                }
                out.push(b'\n');
                rest = &rest[i + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                break;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn data_is_dot_stuffed_with_crlf_line_ends() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b".x\r\n..y\r\nz.\r\n", b"..x\r\n...y\r\nz.\r\n.\r\n"),
            (b"a\nb\n\n.c", b"a\r\nb\r\n\r\n..c\r\n.\r\n"),
            (b"\n\n", b"\r\n\r\n.\r\n"),
            (b"no end", b"no end\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b"", b".\r\n"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&dot_stuffed(raw)),
                String::from_utf8_lossy(want),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
