//! A recording handler, an in-memory harness and a tiny SMTP client.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tidings_smtp::{
    Common, Refusal, Reply, SessionEnd, SmtpConfig, SmtpServer, Submission, SubmissionHandler,
};
use tidings_types::AccountId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const USER: &str = "app@example.com";
pub const PASS: &str = "s3cret pass";

/// Records what the session asked; refuses recipients containing
/// "reject"; can be told to fail `accept`.
#[derive(Default)]
pub struct TestHandler {
    pub account: AccountId,
    pub submissions: Mutex<Vec<Submission>>,
    pub auth_calls: AtomicUsize,
    pub accept_calls: AtomicUsize,
    pub fail_accept: Mutex<Option<Reply>>,
    /// Connections turned away at a limit, in order.
    pub refused: Mutex<Vec<Refusal>>,
    accepted: tokio::sync::Notify,
}

impl TestHandler {
    pub fn accepted(&self) -> usize {
        self.accept_calls.load(Ordering::SeqCst)
    }

    pub fn auths(&self) -> usize {
        self.auth_calls.load(Ordering::SeqCst)
    }

    pub fn submissions(&self) -> Vec<Submission> {
        self.submissions.lock().unwrap().clone()
    }

    /// Wait until `n` messages were accepted.
    pub async fn wait_accepted(&self, n: usize) -> Vec<Submission> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let notified = self.accepted.notified();
                if self.submissions.lock().unwrap().len() >= n {
                    return self.submissions();
                }
                notified.await;
            }
        })
        .await
        .expect("messages accepted in time")
    }
}

#[async_trait::async_trait]
impl SubmissionHandler for TestHandler {
    async fn authenticate(&self, username: &str, password: &str) -> Option<AccountId> {
        self.auth_calls.fetch_add(1, Ordering::SeqCst);
        (username == USER && password == PASS).then_some(self.account)
    }

    async fn check_recipient(&self, account: AccountId, rcpt: &str) -> Result<(), Reply> {
        assert_eq!(account, self.account);
        if rcpt.contains("reject") {
            return Err(Common::RecipientRejected.into());
        }
        Ok(())
    }

    async fn accept(&self, submission: Submission) -> Result<String, Reply> {
        self.accept_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = self.fail_accept.lock().unwrap().clone() {
            return Err(reply);
        }
        let mut subs = self.submissions.lock().unwrap();
        subs.push(submission);
        let id = format!("msg_{}", subs.len());
        drop(subs);
        self.accepted.notify_waiters();
        Ok(id)
    }

    fn connection_refused(&self, why: Refusal) {
        self.refused.lock().unwrap().push(why);
    }
}

/// Limits small enough to reach in a test; AUTH delays short.
pub fn config() -> SmtpConfig {
    let mut c = SmtpConfig {
        hostname: "smtp.test".into(),
        ..SmtpConfig::default()
    };
    c.auth.delay = Duration::from_millis(10);
    c.auth.max_delay = Duration::from_millis(100);
    c
}

pub struct Harness {
    pub server: SmtpServer,
    pub handler: Arc<TestHandler>,
    pub shutdown: CancellationToken,
}

pub fn harness(config: SmtpConfig) -> Harness {
    let handler = Arc::new(TestHandler::default());
    let server = SmtpServer::new(Arc::new(config), handler.clone()).expect("server");
    Harness {
        server,
        handler,
        shutdown: CancellationToken::new(),
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

impl Harness {
    /// A plain in-memory session from `client_ip`; greeting read.
    pub async fn connect_from(
        &self,
        client_ip: IpAddr,
    ) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let server = self.server.clone();
        let token = self.shutdown.clone();
        let task = tokio::spawn(async move { server.session(far, client_ip, token).await });
        let mut client = Client::new(near);
        client.expect(220).await;
        (client, task)
    }

    pub async fn connect(&self) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
        self.connect_from(ip("192.0.2.10")).await
    }

    /// EHLO, STARTTLS, EHLO: ready for AUTH.
    pub async fn connect_tls(&self) -> (Client<TlsStream<DuplexStream>>, JoinHandle<SessionEnd>) {
        self.connect_tls_from(ip("192.0.2.10")).await
    }

    pub async fn connect_tls_from(
        &self,
        client_ip: IpAddr,
    ) -> (Client<TlsStream<DuplexStream>>, JoinHandle<SessionEnd>) {
        let (mut c, task) = self.connect_from(client_ip).await;
        c.cmd("EHLO client.test", 250).await;
        let mut c = c.starttls(self.server.certificate_chain()).await;
        c.cmd("EHLO client.test", 250).await;
        (c, task)
    }

    /// TLS and AUTH done: ready for MAIL.
    pub async fn connect_authed(
        &self,
    ) -> (Client<TlsStream<DuplexStream>>, JoinHandle<SessionEnd>) {
        let (mut c, task) = self.connect_tls().await;
        c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
            .await;
        (c, task)
    }
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn plain(user: &str, pass: &str) -> String {
    b64(&format!("\0{user}\0{pass}"))
}

/// The session's result, within the deadline.
pub async fn ended(task: JoinHandle<SessionEnd>) -> SessionEnd {
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("session ended in time")
        .unwrap()
}

/// A reply as the client saw it.
#[derive(Debug)]
pub struct Resp {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Resp {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream, once every reply has been read.
    pub fn into_inner(self) -> S {
        assert!(self.buf.is_empty(), "unread replies");
        self.stream
    }

    /// Send, ignoring a connection the server already closed.
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.stream.write_all(bytes.as_ref()).await;
        let _ = self.stream.flush().await;
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(String::from_utf8(line).unwrap().trim_end().to_string());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("server answered in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next reply, or `None` once the server closed the connection.
    pub async fn reply(&mut self) -> Option<Resp> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Some(Resp { code, lines });
            }
        }
    }

    /// The next reply, which must have this code.
    pub async fn expect(&mut self, code: u16) -> Resp {
        let r = self
            .reply()
            .await
            .expect("a reply, not a closed connection");
        assert_eq!(r.code, code, "unexpected reply {r:?}");
        r
    }

    /// Send a command line and expect a reply code.
    pub async fn cmd(&mut self, line: &str, code: u16) -> Resp {
        self.send(format!("{line}\r\n")).await;
        self.expect(code).await
    }

    /// The server closed the connection with nothing more to say.
    pub async fn closed(&mut self) {
        if let Some(r) = self.reply().await {
            panic!("expected the connection closed, got {r:?}");
        }
    }

    pub async fn starttls(mut self, chain: &[CertificateDer<'static>]) -> Client<TlsStream<S>> {
        self.cmd("STARTTLS", 220).await;
        assert!(self.buf.is_empty());
        let stream = tls_connect(self.stream, chain).await;
        Client::new(stream)
    }

    /// MAIL, RCPTs and DATA with this body (already CRLF and dot-stuffed);
    /// the final reply.
    pub async fn send_message(&mut self, from: &str, to: &[&str], body: &str) -> Resp {
        self.cmd(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.cmd("DATA", 354).await;
        self.send(format!("{body}.\r\n")).await;
        self.reply().await.expect("final reply")
    }
}

/// A TLS client that trusts exactly the server's certificate.
pub async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    chain: &[CertificateDer<'static>],
) -> TlsStream<S> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(chain[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(
        DEADLINE,
        connector.connect(ServerName::try_from("localhost").unwrap(), stream),
    )
    .await
    .expect("handshake in time")
    .expect("handshake")
}

pub const SIMPLE: &str =
    "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";
