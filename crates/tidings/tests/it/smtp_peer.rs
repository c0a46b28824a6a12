//! A small SMTP server on loopback for the outbound trust tests: STARTTLS
//! with a certificate made by rcgen (or none offered), AUTH PLAIN, and a
//! reply that can be replaced by arbitrary bytes. It records every command
//! it received and whether it came over TLS.

use std::sync::{Arc, Mutex};

use rcgen::CertifiedKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A command as the peer received it.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub line: String,
    pub tls: bool,
}

#[derive(Default)]
pub struct Options {
    /// Offer STARTTLS with this certificate.
    pub cert: Option<Arc<CertifiedKey<rcgen::KeyPair>>>,
    /// Answer the command starting with this verb with these bytes.
    pub raw_reply: Option<(&'static str, Vec<u8>)>,
}

pub struct SmtpPeer {
    pub port: u16,
    commands: Arc<Mutex<Vec<Cmd>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A self-signed certificate for 127.0.0.1 and localhost.
pub fn self_signed() -> Arc<CertifiedKey<rcgen::KeyPair>> {
    Arc::new(
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap(),
    )
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl SmtpPeer {
    pub async fn start(opts: Options) -> SmtpPeer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let acceptor = opts.cert.as_ref().map(|ck| {
            let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(ck.cert.der().to_vec())],
                PrivateKeyDer::from(key),
            )
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let raw = Arc::new(opts.raw_reply);
        let log = commands.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    return;
                };
                let (acceptor, raw, log) = (acceptor.clone(), raw.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = session(Box::new(tcp), acceptor, &raw, &log).await;
                });
            }
        });
        SmtpPeer {
            port,
            commands,
            task,
        }
    }

    pub fn commands(&self) -> Vec<Cmd> {
        self.commands.lock().unwrap().clone()
    }

    /// Whether a command with this verb arrived.
    pub fn got(&self, verb: &str) -> bool {
        self.commands().iter().any(|c| c.line.starts_with(verb))
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    stream: Box<dyn Io>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    raw: &Option<(&'static str, Vec<u8>)>,
    log: &Mutex<Vec<Cmd>>,
) -> std::io::Result<()> {
    let mut io = BufReader::new(stream);
    let mut tls = false;
    io.get_mut().write_all(b"220 peer.test ESMTP\r\n").await?;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        log.lock().unwrap().push(Cmd {
            line: line.clone(),
            tls,
        });
        if let Some((v, bytes)) = raw {
            if verb == *v {
                io.get_mut().write_all(bytes).await?;
                continue;
            }
        }
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if acceptor.is_some() && !tls => {
                b"250-peer.test\r\n250-STARTTLS\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
            }
            "EHLO" => b"250-peer.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n",
            "STARTTLS" => {
                io.get_mut().write_all(b"220 2.0.0 go ahead\r\n").await?;
                let tcp = io.into_inner();
                let stream = acceptor.as_ref().unwrap().accept(tcp).await?;
                io = BufReader::new(Box::new(stream));
                tls = true;
                continue;
            }
            "AUTH" => b"235 2.7.0 Authentication successful\r\n",
            "MAIL" | "RCPT" | "RSET" => b"250 2.1.0 Ok\r\n",
            "DATA" => {
                io.get_mut().write_all(b"354 End data with .\r\n").await?;
                loop {
                    let mut l = String::new();
                    if io.read_line(&mut l).await? == 0 || l == ".\r\n" {
                        break;
                    }
                }
                b"250 2.0.0 Ok: queued\r\n"
            }
            "QUIT" => {
                io.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 unknown command\r\n",
        };
        io.get_mut().write_all(reply).await?;
    }
}
