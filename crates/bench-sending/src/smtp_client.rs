//! The SMTP client side of `sending-load`: one session (EHLO, optional
//! STARTTLS with a verifier that accepts any certificate, AUTH PLAIN) and
//! its pipelined transactions, reading multi-line replies.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) struct Smtp {
    io: BufReader<Box<dyn Stream>>,
    line: String,
}

pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) text: String,
}

impl Smtp {
    pub(crate) async fn reply(&mut self) -> anyhow::Result<Reply> {
        let mut text = String::new();
        loop {
            self.line.clear();
            let n = self.io.read_line(&mut self.line).await?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            let l = self.line.trim_end();
            if l.len() < 3 {
                bail!("not an SMTP reply: {l:?}");
            }
            let code: u16 = l[..3].parse().context("reply code")?;
            text.push_str(l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
            text.push(' ');
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let w = self.io.get_mut();
        w.write_all(bytes).await?;
        w.flush().await?;
        Ok(())
    }

    pub(crate) async fn command(&mut self, line: &str, expect: u16) -> anyhow::Result<Reply> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        let r = self.reply().await?;
        if r.code != expect {
            bail!("{line:?} got {}", r.text);
        }
        Ok(r)
    }

    pub(crate) async fn open(
        addr: SocketAddr,
        starttls: bool,
        auth: Option<&str>,
    ) -> anyhow::Result<Smtp> {
        let tcp = TcpStream::connect(addr).await.context("connecting")?;
        tcp.set_nodelay(true)?;
        let mut s = Smtp {
            io: BufReader::with_capacity(16 * 1024, Box::new(tcp)),
            line: String::new(),
        };
        let greeting = s.reply().await?;
        if greeting.code != 220 {
            bail!("greeting: {}", greeting.text);
        }
        s.command("EHLO bench.test", 250).await?;
        if starttls {
            s.command("STARTTLS", 220).await?;
            let connector = tokio_rustls::TlsConnector::from(tls_config());
            let name = rustls::pki_types::ServerName::try_from("localhost".to_string())?;
            let tls = connector.connect(name, s.io.into_inner()).await?;
            s = Smtp {
                io: BufReader::with_capacity(16 * 1024, Box::new(tls)),
                line: String::new(),
            };
            s.command("EHLO bench.test", 250).await?;
        }
        if let Some(auth) = auth {
            use base64::Engine;
            let (user, pass) = auth.split_once(':').context("--auth user:password")?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
            s.command(&format!("AUTH PLAIN {token}"), 235).await?;
        }
        Ok(s)
    }

    /// One message; `Ok(None)` when accepted, `Ok(Some(reply))` when refused.
    pub(crate) async fn transaction(
        &mut self,
        from: &str,
        rcpt: &str,
        data: &[u8],
        pipelining: bool,
    ) -> anyhow::Result<Option<String>> {
        let mail = format!("MAIL FROM:<{from}>\r\n");
        let rcpt = format!("RCPT TO:<{rcpt}>\r\n");
        let (m, r, d) = if pipelining {
            self.send(format!("{mail}{rcpt}DATA\r\n").as_bytes())
                .await?;
            (
                self.reply().await?,
                self.reply().await?,
                self.reply().await?,
            )
        } else {
            self.send(mail.as_bytes()).await?;
            let m = self.reply().await?;
            if m.code != 250 {
                return Ok(Some(m.text));
            }
            self.send(rcpt.as_bytes()).await?;
            let r = self.reply().await?;
            if r.code != 250 {
                self.command("RSET", 250).await?;
                return Ok(Some(r.text));
            }
            self.send(b"DATA\r\n").await?;
            (m, r, self.reply().await?)
        };
        if d.code != 354 {
            let why = [m, r, d]
                .into_iter()
                .find(|x| x.code >= 400)
                .map(|x| x.text)
                .unwrap_or_default();
            if pipelining {
                self.command("RSET", 250).await?;
            }
            return Ok(Some(why));
        }
        self.send(data).await?;
        let end = self.reply().await?;
        Ok((end.code != 250).then_some(end.text))
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth(),
    )
}

/// The benchmark talks to 127.0.0.1 with self-signed certificates.
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
