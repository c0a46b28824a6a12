//! The inbound MX mode: the same sessions without AUTH, the null sender
//! accepted, every recipient checked by the handler and a foreign one
//! refused at RCPT, and the limits of submission. In memory over
//! `tokio::io::duplex`, and once over TCP with Python's smtplib.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tidings_smtp::{
    Common, InboundHandler, InboundMessage, Reply, SessionEnd, SmtpConfig, SmtpServer,
};
use tokio::io::DuplexStream;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::support::*;

/// Claims recipients whose local part starts with `b-` (VERP-looking) or is
/// `fbl`, and postmaster (bare or at bounces.test, any case); records every
/// check and every message; can be told to fail `accept`.
#[derive(Default)]
pub struct MxHandler {
    pub checked: Mutex<Vec<String>>,
    pub messages: Mutex<Vec<InboundMessage>>,
    pub accept_calls: AtomicUsize,
    pub fail_accept: Mutex<Option<Reply>>,
}

impl MxHandler {
    pub fn accepted(&self) -> usize {
        self.accept_calls.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<InboundMessage> {
        self.messages.lock().unwrap().clone()
    }

    pub fn checked(&self) -> Vec<String> {
        self.checked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl InboundHandler for MxHandler {
    async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply> {
        self.checked.lock().unwrap().push(rcpt.to_string());
        let postmaster = ["postmaster", "postmaster@bounces.test"]
            .iter()
            .any(|p| rcpt.eq_ignore_ascii_case(p));
        if rcpt.starts_with("b-") || rcpt.starts_with("fbl@") || postmaster {
            Ok(())
        } else {
            Err(Common::NoSuchUser.into())
        }
    }

    async fn accept(&self, message: InboundMessage) -> Result<String, Reply> {
        self.accept_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = self.fail_accept.lock().unwrap().clone() {
            return Err(reply);
        }
        let mut messages = self.messages.lock().unwrap();
        messages.push(message);
        Ok(format!("in_{}", messages.len()))
    }
}

struct Mx {
    server: SmtpServer,
    handler: Arc<MxHandler>,
}

fn mx(config: SmtpConfig) -> Mx {
    let handler = Arc::new(MxHandler::default());
    let server = SmtpServer::inbound(Arc::new(config), handler.clone()).expect("server");
    assert!(server.is_inbound());
    Mx { server, handler }
}

impl Mx {
    /// A plain in-memory session; greeting read.
    async fn connect(&self) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let server = self.server.clone();
        let task = tokio::spawn(async move {
            server
                .session(far, ip("198.51.100.7"), CancellationToken::new())
                .await
        });
        let mut client = Client::new(near);
        client.expect(220).await;
        (client, task)
    }

    /// Connected and greeted with EHLO, as an MTA would be.
    async fn ready(&self) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
        let (mut c, task) = self.connect().await;
        c.cmd("EHLO mx.example.org", 250).await;
        (c, task)
    }
}

const VERP: &str = "b-msg_01=rcpt.example.org@bounces.test";

/// A DSN as it goes on the wire (dot-stuffed), with what is easy to get
/// wrong: leading dots, a lone dot line, and 8-bit octets in a top-level
/// header without SMTPUTF8.
const DSN_WIRE: &str = concat!(
    "From: MAILER-DAEMON@mx.example.org\r\n",
    "To: b-msg_01=rcpt.example.org@bounces.test\r\n",
    "Subject: Unzustellbar: Grüße\r\n",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n",
    "\r\n",
    "--B\r\n",
    "\r\n",
    "..leading dot\r\n",
    "..\r\n",
    "...\r\n",
    "--B\r\n",
    "Content-Type: message/delivery-status\r\n",
    "\r\n",
    "Reporting-MTA: dns; mx.example.org\r\n",
    "\r\n",
    "Final-Recipient: rfc822; rcpt@example.org\r\n",
    "Action: failed\r\n",
    "Status: 5.1.1\r\n",
    "--B--\r\n",
);

/// [`DSN_WIRE`] unstuffed: what the handler must get, byte for byte.
const DSN_RAW: &str = concat!(
    "From: MAILER-DAEMON@mx.example.org\r\n",
    "To: b-msg_01=rcpt.example.org@bounces.test\r\n",
    "Subject: Unzustellbar: Grüße\r\n",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n",
    "\r\n",
    "--B\r\n",
    "\r\n",
    ".leading dot\r\n",
    ".\r\n",
    "..\r\n",
    "--B\r\n",
    "Content-Type: message/delivery-status\r\n",
    "\r\n",
    "Reporting-MTA: dns; mx.example.org\r\n",
    "\r\n",
    "Final-Recipient: rfc822; rcpt@example.org\r\n",
    "Action: failed\r\n",
    "Status: 5.1.1\r\n",
    "--B--\r\n",
);

#[tokio::test]
async fn ehlo_offers_starttls_never_auth() {
    let m = mx(config());
    let (mut c, _task) = m.connect().await;
    let r = c.cmd("EHLO mx.example.org", 250).await;
    for ext in ["PIPELINING", "SIZE 26214400", "8BITMIME", "STARTTLS"] {
        assert!(r.lines.iter().any(|l| l == ext), "{ext} missing in {r:?}");
    }
    assert!(!r.lines.iter().any(|l| l.starts_with("AUTH")), "{r:?}");
    let auth = format!("AUTH PLAIN {}", plain(USER, PASS));
    assert_eq!(
        c.cmd(&auth, 502).await.text(),
        "5.5.1 Command not implemented"
    );
    assert!(!c.cmd("HELP", 214).await.text().contains("AUTH"));

    let mut c = c.starttls(m.server.certificate_chain()).await;
    let r = c.cmd("EHLO mx.example.org", 250).await;
    assert!(!r.lines.iter().any(|l| l.starts_with("AUTH")), "{r:?}");
    assert!(!r.lines.iter().any(|l| l == "STARTTLS"), "{r:?}");
    c.cmd(&auth, 502).await;
    // Over TLS, still no AUTH needed.
    assert_eq!(c.send_message("", &[VERP], SIMPLE).await.code, 250);
    assert!(m.handler.messages()[0].tls);
}

#[tokio::test]
async fn null_sender_is_accepted_without_auth() {
    let m = mx(config());
    let (mut c, task) = m.ready().await;
    assert_eq!(c.cmd("MAIL FROM:<>", 250).await.text(), "2.1.0 Sender OK");
    assert_eq!(
        c.cmd(&format!("RCPT TO:<{VERP}>"), 250).await.text(),
        "2.1.5 Recipient OK"
    );
    c.cmd("DATA", 354).await;
    c.send(format!("{SIMPLE}.\r\n")).await;
    assert_eq!(c.expect(250).await.text(), "2.0.0 OK queued as in_1");
    // A sender that is not null works too (ARF reports have one).
    let r = c
        .send_message("fbl@isp.example", &["fbl@bounces.test"], SIMPLE)
        .await;
    assert_eq!(r.code, 250);
    c.cmd("QUIT", 221).await;
    assert_eq!(ended(task).await, SessionEnd::Quit);
    let msgs = m.handler.messages();
    let msg = &msgs[0];
    assert_eq!(msg.mail_from, "");
    assert_eq!(msg.rcpt_to, [VERP]);
    assert_eq!(&msg.raw[..], SIMPLE.as_bytes());
    assert_eq!(msg.helo, "mx.example.org");
    assert_eq!(msg.client_ip, ip("198.51.100.7"));
    assert!(!msg.tls);
    assert_eq!(msgs[1].mail_from, "fbl@isp.example");
}

#[tokio::test]
async fn foreign_recipient_is_refused_at_rcpt_and_never_reaches_accept() {
    let m = mx(config());
    let (mut c, _task) = m.ready().await;
    c.cmd("MAIL FROM:<>", 250).await;
    // Well-formed, deliverable elsewhere: still refused, the MX is no relay.
    for foreign in [
        "someone@example.com",
        "postmaster@example.com",
        "user%example.com@bounces.test",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{foreign}>"), 550).await;
        assert_eq!(r.text(), "5.1.1 No such user here");
    }
    assert_eq!(
        c.cmd("DATA", 503).await.text(),
        "5.5.1 Need RCPT before DATA"
    );
    c.cmd("RSET", 250).await;
    // Mixed: only ours is kept.
    c.cmd("MAIL FROM:<>", 250).await;
    c.cmd("RCPT TO:<victim@example.org>", 550).await;
    c.cmd(&format!("RCPT TO:<{VERP}>"), 250).await;
    c.cmd("DATA", 354).await;
    c.send(format!("{SIMPLE}.\r\n")).await;
    c.expect(250).await;
    assert_eq!(m.handler.accepted(), 1);
    assert_eq!(m.handler.messages()[0].rcpt_to, [VERP]);
    assert_eq!(m.handler.checked().len(), 5, "every RCPT is checked");
}

#[tokio::test]
async fn dsn_is_delivered_byte_exact_after_unstuffing() {
    let m = mx(config());
    let (mut c, _task) = m.ready().await;
    // No SMTPUTF8, yet an 8-bit Subject: accepted on the MX.
    let r = c.send_message("", &[VERP], DSN_WIRE).await;
    assert_eq!(r.code, 250, "{r:?}");
    let msg = &m.handler.messages()[0];
    assert_eq!(std::str::from_utf8(&msg.raw).unwrap(), DSN_RAW);
}

#[tokio::test]
async fn message_size_limit_is_552_as_in_submission() {
    let mut cfg = config();
    cfg.max_message_bytes = 10_000;
    let m = mx(cfg);
    let (mut c, _task) = m.ready().await;
    let r = c.cmd("MAIL FROM:<> SIZE=20000", 552).await;
    assert_eq!(
        r.text(),
        "5.3.4 Message size exceeds fixed maximum message size"
    );
    let big = format!(
        "Subject: big\r\n\r\n{}",
        ("x".repeat(900) + "\r\n").repeat(20)
    );
    let r = c.send_message("", &[VERP], &big).await;
    assert_eq!(r.code, 552);
    // In step after the refusal.
    assert_eq!(c.send_message("", &[VERP], SIMPLE).await.code, 250);
    assert_eq!(m.handler.accepted(), 1);
}

#[tokio::test]
async fn framing_and_limits_are_those_of_submission() {
    let mut cfg = config();
    cfg.max_recipients = 2;
    cfg.max_errors = 5;
    cfg.max_command_line = 512;
    let m = mx(cfg);
    let (mut c, task) = m.connect().await;
    c.cmd("MAIL FROM:<>", 503).await; // EHLO first
    c.cmd("HELO legacy.example.org", 250).await; // HELO is enough
    c.cmd("MAIL FROM:<>", 250).await;
    c.cmd("RCPT TO:<b-1@bounces.test>", 250).await;
    c.cmd("RCPT TO:<b-2@bounces.test>", 250).await;
    c.cmd("RCPT TO:<b-3@bounces.test>", 452).await;
    c.cmd("DATA", 354).await;
    // A bare LF: refused, and "\n.\n" does not end the data.
    c.send("Subject: x\r\n\r\nhi\n.\nstill data\r\n.\r\n").await;
    assert_eq!(
        c.expect(554).await.text(),
        "5.6.0 Message has a line not ended by CRLF"
    );
    // A bare CR: refused, and "\r.\r" does not end the data.
    c.cmd("MAIL FROM:<>", 250).await;
    c.cmd("RCPT TO:<b-1@bounces.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send("Subject: x\r\n\r\nhi\r.\rstill data\r\n.\r\n").await;
    assert_eq!(
        c.expect(554).await.text(),
        "5.6.0 Message has a CR not followed by LF"
    );
    // A line over 998 octets.
    let long = format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(999));
    assert_eq!(c.send_message("", &[VERP], &long).await.code, 554);
    assert_eq!(m.handler.accepted(), 0);
    // Command line too long, then errors up to the limit.
    c.cmd(&format!("NOOP {}", "a".repeat(600)), 500).await;
    c.cmd("GARBAGE", 500).await;
    c.cmd("AUTH LOGIN", 502).await;
    c.cmd("RCPT TO:<b-1@bounces.test>", 503).await;
    c.send("GARBAGE\r\n").await;
    c.expect(500).await;
    assert_eq!(
        c.expect(421).await.text(),
        "4.7.0 Too many errors, closing connection"
    );
    assert_eq!(ended(task).await, SessionEnd::TooManyErrors);
}

#[tokio::test]
async fn pipelined_bounce_is_answered_in_order() {
    let m = mx(config());
    let (mut c, _task) = m.ready().await;
    c.send(format!(
        "MAIL FROM:<>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<{VERP}>\r\nDATA\r\n"
    ))
    .await;
    c.expect(250).await;
    c.expect(550).await;
    c.expect(250).await;
    c.expect(354).await;
    c.send(format!("{DSN_WIRE}.\r\nQUIT\r\n")).await;
    assert_eq!(c.expect(250).await.text(), "2.0.0 OK queued as in_1");
    c.expect(221).await;
    assert_eq!(&m.handler.messages()[0].raw[..], DSN_RAW.as_bytes());
}

#[tokio::test]
async fn storage_failure_is_451_and_the_session_goes_on() {
    let m = mx(config());
    let (mut c, _task) = m.ready().await;
    *m.handler.fail_accept.lock().unwrap() = Some(Common::StorageFailure.into());
    let r = c.send_message("", &[VERP], SIMPLE).await;
    assert_eq!(r.code, 451);
    assert_eq!(r.text(), "4.3.0 Temporary failure, try again later");
    *m.handler.fail_accept.lock().unwrap() = None;
    assert_eq!(c.send_message("", &[VERP], SIMPLE).await.code, 250);
    assert_eq!(m.handler.accepted(), 2);
    assert_eq!(m.handler.messages().len(), 1);
}

#[tokio::test]
async fn smtplib_bounce_with_null_sender_over_tcp() {
    let handler = Arc::new(MxHandler::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(tidings_smtp::serve_inbound(
        listener,
        Arc::new(config()),
        handler.clone(),
        shutdown.clone(),
    ));
    let out = super::e2e::python(port, 0, "inbound_bounce").await;
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("server stopped in time")
        .unwrap()
        .unwrap();

    let features = |key: &str| -> Vec<String> {
        let list = out[key].as_array().unwrap().iter();
        list.map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let plain = features("features");
    assert!(plain.iter().any(|f| f == "starttls"), "{plain:?}");
    assert!(!plain.iter().any(|f| f == "auth"), "{plain:?}");
    assert!(!features("tls_features").iter().any(|f| f == "auth"));
    let no_such_user = serde_json::json!([550, "5.1.1 No such user here"]);
    assert_eq!(out["refused"]["someone@example.com"], no_such_user);
    assert_eq!(out["foreign_only"]["postmaster@example.net"], no_such_user);
    assert_eq!(out["auth"], 502);

    let msgs = handler.messages();
    assert_eq!(
        msgs.len(),
        2,
        "the foreign-only message never reached accept"
    );
    assert_eq!(handler.accepted(), 2);
    for m in &msgs {
        assert_eq!(m.mail_from, "");
        assert_eq!(m.helo, "mx.example.org");
        assert_eq!(m.client_ip, ip("127.0.0.1"));
        let raw = std::str::from_utf8(&m.raw).unwrap();
        assert!(
            raw.contains("\r\n.a line that starts with a dot\r\n"),
            "{raw}"
        );
        assert!(raw.ends_with("Status: 5.1.1\r\n--B--\r\n"), "{raw}");
    }
    assert_eq!(msgs[0].rcpt_to, ["b-msg1=rcpt.example.org@bounces.test"]);
    assert!(!msgs[0].tls);
    assert_eq!(msgs[1].rcpt_to, ["b-msg2=other.example.org@bounces.test"]);
    assert!(msgs[1].tls);
}

#[tokio::test]
async fn postmaster_without_a_domain_reaches_the_handler() {
    let m = mx(config());
    let (mut c, _task) = m.ready().await;
    c.cmd("MAIL FROM:<someone@example.org>", 250).await;
    c.cmd("RCPT TO:<Postmaster>", 250).await;
    c.cmd("RCPT TO:<POSTMASTER@bounces.test>", 250).await;
    // The null address is still no recipient.
    c.cmd("RCPT TO:<>", 501).await;
    c.cmd("DATA", 354).await;
    c.send(format!("{SIMPLE}.\r\n")).await;
    c.expect(250).await;
    assert_eq!(
        m.handler.messages()[0].rcpt_to,
        ["postmaster", "POSTMASTER@bounces.test"]
    );
    assert_eq!(m.handler.checked()[0], "postmaster");
}
