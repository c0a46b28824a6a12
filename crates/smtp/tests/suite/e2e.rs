//! End to end over real TCP on 127.0.0.1 with a real client: Python's
//! smtplib (tests/e2e_client.py). Each test starts `serve` and
//! `serve_implicit_tls`, runs one client scenario, then shuts the server
//! down and waits for it, so every session has ended before the handler's
//! counters are read.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;
use tidings_smtp::{SmtpConfig, SmtpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::support::*;

struct Tcp {
    handler: Arc<TestHandler>,
    port: u16,
    tls_port: u16,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

async fn start(config: SmtpConfig) -> Tcp {
    let handler = Arc::new(TestHandler::default());
    let server = SmtpServer::new(Arc::new(config), handler.clone()).unwrap();
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (port, tls_port) = (
        plain.local_addr().unwrap().port(),
        tls.local_addr().unwrap().port(),
    );
    let shutdown = CancellationToken::new();
    let (s1, s2, t1, t2) = (server.clone(), server, shutdown.clone(), shutdown.clone());
    let tasks = vec![
        tokio::spawn(async move { s1.serve(plain, t1).await }),
        tokio::spawn(async move { s2.serve_implicit_tls(tls, t2).await }),
    ];
    Tcp {
        handler,
        port,
        tls_port,
        shutdown,
        tasks,
    }
}

/// Run one scenario of tests/e2e_client.py against these ports; what the
/// client printed.
pub(super) async fn python(port: u16, tls_port: u16, scenario: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e_client.py");
    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .arg(script)
        .arg(port.to_string())
        .arg(tls_port.to_string())
        .arg(scenario)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE * 3, out)
        .await
        .expect("client finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

impl Tcp {
    async fn python(&self, scenario: &str) -> Value {
        python(self.port, self.tls_port, scenario).await
    }

    /// Stop the listeners and wait until every session has ended.
    async fn stop(self) -> Arc<TestHandler> {
        self.shutdown.cancel();
        for t in self.tasks {
            tokio::time::timeout(DEADLINE, t)
                .await
                .expect("server stopped in time")
                .unwrap();
        }
        self.handler
    }
}

#[tokio::test]
async fn smtplib_starttls_auth_plain_smtputf8_8bitmime() {
    let tcp = start(config()).await;
    let out = tcp.python("starttls_plain").await;
    let features: Vec<&str> = out["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in [
        "8bitmime",
        "auth",
        "enhancedstatuscodes",
        "pipelining",
        "size",
        "smtputf8",
    ] {
        assert!(features.contains(&f), "{f} not in {features:?}");
    }
    assert_eq!(out["refused"], serde_json::json!({}));
    let h = tcp.stop().await;
    let s = &h.submissions()[0];
    assert_eq!(s.mail_from, "jörg@example.com");
    assert_eq!(s.rcpt_to, ["zoë@example.org", "b@example.org"]);
    assert!(s.smtputf8 && s.body_8bit && s.tls);
    assert_eq!(s.client_ip, ip("127.0.0.1"));
    let raw = std::str::from_utf8(&s.raw).unwrap();
    assert!(raw.contains("Subject: Grüße aus Köln\r\n"), "{raw}");
    assert!(raw.ends_with("Schöne Grüße.\r\n.leading dot\r\n"), "{raw}");
}

#[tokio::test]
async fn smtplib_auth_login() {
    let tcp = start(config()).await;
    assert_eq!(tcp.python("starttls_login").await["auth"], 235);
    let h = tcp.stop().await;
    assert_eq!(h.submissions()[0].rcpt_to, ["a@example.org"]);
}

#[tokio::test]
async fn smtplib_implicit_tls() {
    let tcp = start(config()).await;
    assert_eq!(tcp.python("implicit_tls").await["starttls"], false);
    let h = tcp.stop().await;
    assert!(h.submissions()[0].tls);
}

#[tokio::test]
async fn smtplib_refusals() {
    let mut cfg = config();
    cfg.max_message_bytes = 64 * 1024;
    cfg.max_recipients = 3;
    let tcp = start(cfg).await;

    let out = tcp.python("auth_before_tls").await;
    assert_eq!(out["offered"], false);
    assert_eq!(out["code"], 538);
    assert_eq!(
        out["text"],
        "5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(out["mail"], 530);

    let out = tcp.python("wrong_password").await;
    assert_eq!(out["code"], 535);
    assert_eq!(out["text"], "5.7.8 Authentication credentials invalid");

    let out = tcp.python("unauthenticated_mail").await;
    assert_eq!(out["code"], 530);
    assert_eq!(out["text"], "5.7.0 Authentication required");
    assert_eq!(out["rcpt"], 503);

    let out = tcp.python("oversize").await;
    assert_eq!(out["declared"], 552);
    assert_eq!(out["code"], 552);
    assert_eq!(out["after"], 250);

    let out = tcp.python("pipelined_garbage").await;
    assert_eq!(
        out["replies"],
        serde_json::json!([220, 250, 500, 250, 500, 530, 214, 221])
    );

    let out = tcp.python("disconnect_mid_data").await;
    assert_eq!(out["data"], 354);

    let h = tcp.stop().await;
    assert_eq!(h.accepted(), 0, "nothing may be accepted on these paths");

    let tcp = start({
        let mut c = config();
        c.max_recipients = 3;
        c
    })
    .await;
    let out = tcp.python("too_many_recipients").await;
    let refused = out["refused"].as_object().unwrap();
    assert_eq!(refused.len(), 2);
    assert_eq!(
        refused["r3@example.org"],
        serde_json::json!([452, "4.5.3 Too many recipients"])
    );
    let h = tcp.stop().await;
    assert_eq!(h.submissions()[0].rcpt_to.len(), 3);
}

#[tokio::test]
async fn connections_over_the_limit_get_421() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let tcp = start(cfg).await;
    let mut first = TcpStream::connect(("127.0.0.1", tcp.port)).await.unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"220 "));
    let mut second = TcpStream::connect(("127.0.0.1", tcp.port)).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(DEADLINE, second.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "421 4.3.2 Too many connections, try again later\r\n");
    // Shutdown reaches the session that is still open.
    first.write_all(b"EHLO x\r\n").await.unwrap();
    tcp.shutdown.cancel();
    let mut rest = String::new();
    tokio::time::timeout(DEADLINE, first.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(
        rest.ends_with("421 4.3.2 Service shutting down, closing connection\r\n"),
        "{rest}"
    );
    let h = tcp.stop().await;
    assert_eq!(h.accepted(), 0);
}

#[tokio::test]
async fn serve_function_runs_until_shutdown() {
    let handler = Arc::new(TestHandler::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(tidings_smtp::serve(
        listener,
        Arc::new(config()),
        handler,
        shutdown.clone(),
    ));
    let mut client = Client::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    client.expect(220).await;
    client.cmd("EHLO client.test", 250).await;
    shutdown.cancel();
    client.expect(421).await;
    client.closed().await;
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("serve returned in time")
        .unwrap()
        .unwrap();
}
