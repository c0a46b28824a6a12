//! A small SMTP client: enough of RFC 5321 to deliver one message to
//! several recipients, with STARTTLS (RFC 3207) and AUTH PLAIN.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A reply: code and text (lines joined with a space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// `"250 2.0.0 Ok"` as the server said it.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("the server sent something that is not an SMTP reply")]
    Protocol,
    #[error("TLS failed: {0}")]
    Tls(String),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open SMTP session.
pub struct Session {
    io: BufReader<Box<dyn Stream>>,
    pub tls: bool,
    pub extensions: Vec<String>,
    timeout: Duration,
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify))
        .with_no_client_auth();
    Arc::new(config)
}

/// Opportunistic TLS between MTAs does not verify certificates (RFC 7435):
/// encryption without authentication beats plaintext, which is the only
/// alternative when a certificate does not match.
#[derive(Debug)]
struct NoVerify;

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl Session {
    /// Connect, read the greeting, EHLO, and upgrade with STARTTLS when
    /// offered (and not disabled).
    pub async fn connect(
        addr: std::net::SocketAddr,
        server_name: &str,
        helo: &str,
        starttls: bool,
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
        if starttls && s.has("STARTTLS") {
            let r = s.command("STARTTLS").await?;
            if r.code == 220 {
                s = s.upgrade(server_name).await?;
                let ehlo = s.ehlo(helo).await?;
                if !ehlo.is_ok() {
                    return Ok((s, ehlo));
                }
            }
        }
        Ok((s, greeting))
    }

    async fn upgrade(self, server_name: &str) -> Result<Session, ClientError> {
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap_or_else(|_| {
                rustls::pki_types::ServerName::try_from("localhost".to_string()).expect("valid")
            });
        let inner = self.io.into_inner();
        let tls = tokio::time::timeout(self.timeout, connector.connect(name, inner))
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
        let mut lines = Vec::new();
        let mut code;
        loop {
            let mut line = String::new();
            let n =
                tokio::time::timeout(self.timeout, (&mut self.io).take(4096).read_line(&mut line))
                    .await
                    .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.len() < 3 || lines.len() > 100 {
                return Err(ClientError::Protocol);
            }
            code = line[..3]
                .parse::<u16>()
                .map_err(|_| ClientError::Protocol)?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                break;
            }
        }
        let text = lines.join(" ");
        Ok((Reply { code, text }, lines))
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
