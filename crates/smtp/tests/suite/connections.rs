//! Connection-level defences: the per-address connection limit over real
//! TCP (127.0.0.2 is another client: Linux routes all of 127/8 to the
//! loopback interface), and the setup timeout, which a client cannot
//! stretch with a NOOP now and then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tidings_smtp::{Refusal, SessionEnd, SmtpConfig, SmtpServer};
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::inbound::MxHandler;
use super::support::*;

/// A TCP connection to `to` from the address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(DEADLINE, socket.connect(to))
        .await
        .expect("connected in time")
        .unwrap()
}

/// What the server says first on a new connection (its greeting, or the
/// refusal and then the close).
async fn first_words(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("server spoke in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Everything until the server closes.
async fn to_the_end(stream: &mut TcpStream) -> String {
    let mut rest = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut rest))
        .await
        .expect("closed in time")
        .unwrap();
    rest
}

const FROM_YOUR_ADDRESS: &str = "421 4.7.0 Too many connections from your address\r\n";

/// Serve `server` on a plain and an implicit-TLS listener on 127.0.0.1.
async fn listen(server: SmtpServer, shutdown: &CancellationToken) -> (SocketAddr, SocketAddr) {
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
    let (s1, t1, t2) = (server.clone(), shutdown.clone(), shutdown.clone());
    tokio::spawn(async move { s1.serve(plain, t1).await });
    tokio::spawn(async move { server.serve_implicit_tls(tls, t2).await });
    addrs
}

#[tokio::test]
async fn one_address_gets_its_share_of_submission_and_no_more() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 2;
    let handler = Arc::new(TestHandler::default());
    let server = SmtpServer::new(Arc::new(cfg), handler.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let (plain, tls) = listen(server, &shutdown).await;

    // The limit holds across the server's listeners.
    let mut first = connect_from("127.0.0.1", plain).await;
    assert!(first_words(&mut first).await.starts_with("220 "));
    let _implicit = connect_from("127.0.0.1", tls).await;
    let mut third = connect_from("127.0.0.1", plain).await;
    assert_eq!(to_the_end(&mut third).await, FROM_YOUR_ADDRESS);
    // Another address is served.
    let mut other = connect_from("127.0.0.2", plain).await;
    assert!(first_words(&mut other).await.starts_with("220 "));
    assert_eq!(*handler.refused.lock().unwrap(), [Refusal::PerIpLimit]);

    // A slot comes back once its session ends.
    drop(first);
    let greeted = eventually(|| async {
        let mut again = connect_from("127.0.0.1", plain).await;
        first_words(&mut again).await.starts_with("220 ")
    })
    .await;
    assert!(greeted);
    shutdown.cancel();
}

#[tokio::test]
async fn one_address_gets_its_share_of_the_inbound_mx_and_no_more() {
    let mut cfg = config();
    cfg.max_connections_per_ip = 1;
    cfg.max_connections = 2;
    let handler = Arc::new(MxHandler::default());
    let server = SmtpServer::inbound(Arc::new(cfg), handler).unwrap();
    let shutdown = CancellationToken::new();
    let (plain, _) = listen(server, &shutdown).await;
    let mut first = connect_from("127.0.0.1", plain).await;
    assert!(first_words(&mut first).await.starts_with("220 "));
    let mut second = connect_from("127.0.0.1", plain).await;
    assert_eq!(to_the_end(&mut second).await, FROM_YOUR_ADDRESS);
    let mut other = connect_from("127.0.0.2", plain).await;
    assert!(first_words(&mut other).await.starts_with("220 "));
    // Two held in all: a third address meets the total limit.
    let mut third = connect_from("127.0.0.3", plain).await;
    assert_eq!(
        to_the_end(&mut third).await,
        "421 4.3.2 Too many connections, try again later\r\n"
    );
    shutdown.cancel();
}

/// Poll `f` until it is true, within the deadline.
async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Send NOOP every 3 (virtual) seconds until the server says something
/// else; that reply.
async fn noop_until_refused<S>(c: &mut Client<S>) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        c.try_send("NOOP\r\n").await;
        let r = c.reply().await.expect("a reply");
        if r.code != 250 {
            return r;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

fn setup_config() -> SmtpConfig {
    let mut cfg = config();
    cfg.setup_timeout = Duration::from_secs(10);
    cfg.idle_timeout = Duration::from_secs(60);
    cfg
}

#[tokio::test(start_paused = true)]
async fn submission_must_authenticate_within_the_setup_timeout() {
    let h = harness(setup_config());
    let start = tokio::time::Instant::now();
    let (mut c, task) = h.connect_tls().await;
    let r = noop_until_refused(&mut c).await;
    assert_eq!(r.code, 421);
    assert_eq!(
        r.text(),
        "4.4.2 Authentication not completed in time, closing connection"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(60),
        "{took:?}"
    );
    assert_eq!(ended(task).await, SessionEnd::SetupTimeout);

    // Once authenticated, only the idle and session timeouts apply.
    let (mut c, _task) = h.connect_authed().await;
    for _ in 0..10 {
        c.cmd("NOOP", 250).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        250
    );
}

/// An in-memory inbound session from 198.51.100.7, greeting read.
async fn mx_session(server: &SmtpServer) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let server = server.clone();
    let task = tokio::spawn(async move {
        server
            .session(far, ip("198.51.100.7"), CancellationToken::new())
            .await
    });
    let mut c = Client::new(near);
    c.expect(220).await;
    (c, task)
}

#[tokio::test(start_paused = true)]
async fn inbound_mx_must_start_a_transaction_within_the_setup_timeout() {
    let server =
        SmtpServer::inbound(Arc::new(setup_config()), Arc::new(MxHandler::default())).unwrap();
    let (mut c, task) = mx_session(&server).await;
    c.cmd("EHLO mx.example.org", 250).await;
    let r = noop_until_refused(&mut c).await;
    assert_eq!(
        r.text(),
        "4.4.2 No mail transaction started in time, closing connection"
    );
    assert_eq!(ended(task).await, SessionEnd::SetupTimeout);

    let (mut c, _task) = mx_session(&server).await;
    c.cmd("EHLO mx.example.org", 250).await;
    c.cmd("MAIL FROM:<>", 250).await;
    for _ in 0..10 {
        c.cmd("NOOP", 250).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    c.cmd("RCPT TO:<b-1@bounces.test>", 250).await;
}
