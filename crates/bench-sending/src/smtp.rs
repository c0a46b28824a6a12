//! The `smtp` load generator: sessions that connect, EHLO, optionally
//! STARTTLS (trusting any certificate: the benchmark talks to 127.0.0.1
//! with self-signed ones) and AUTH PLAIN once, then send their share of
//! the messages, MAIL, RCPT and DATA pipelined in one write.

use super::*;
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Smtp {
    io: BufReader<Box<dyn Stream>>,
    line: String,
}

struct Reply {
    code: u16,
    text: String,
}

impl Smtp {
    async fn reply(&mut self) -> anyhow::Result<Reply> {
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

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let w = self.io.get_mut();
        w.write_all(bytes).await?;
        w.flush().await?;
        Ok(())
    }

    async fn command(&mut self, line: &str, expect: u16) -> anyhow::Result<Reply> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        let r = self.reply().await?;
        if r.code != expect {
            bail!("{line:?} got {}", r.text);
        }
        Ok(r)
    }

    async fn open(addr: SocketAddr, starttls: bool, auth: Option<&str>) -> anyhow::Result<Smtp> {
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
    async fn transaction(
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

pub(crate) async fn smtp(a: SmtpArgs) -> anyhow::Result<()> {
    let corpus = Arc::new(Corpus::new(&a.common));
    let sample = corpus.message(0).len();
    let next = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(a.common.conns + 1));
    let mut tasks = Vec::new();
    for _ in 0..a.common.conns {
        let (corpus, next, ready) = (corpus.clone(), next.clone(), ready.clone());
        let (addr, starttls, auth, total) = (a.addr, a.starttls, a.auth.clone(), a.common.messages);
        let pipelining = !a.no_pipelining;
        tasks.push(tokio::spawn(async move {
            let opened = Smtp::open(addr, starttls, auth.as_deref()).await;
            ready.wait().await;
            let mut s = opened?;
            let mut out = Outcome::new(total);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let mut data = corpus.message(i);
                data.extend_from_slice(b".\r\n");
                let t = Instant::now();
                match s
                    .transaction(&corpus.from, &corpus.rcpt(i), &data, pipelining)
                    .await?
                {
                    None => {
                        out.ok += 1;
                        out.latencies_us.push(t.elapsed().as_micros() as u32);
                    }
                    Some(why) => {
                        out.refused += 1;
                        out.last_refusal = Some(why);
                    }
                }
            }
            let _ = s.command("QUIT", 221).await;
            anyhow::Ok(out)
        }));
    }
    ready.wait().await;
    let start = Instant::now();
    let mut outs = Vec::new();
    for t in tasks {
        outs.push(t.await??);
    }
    let elapsed = start.elapsed();
    report("smtp", &a.common, sample, elapsed, outs);
    Ok(())
}
