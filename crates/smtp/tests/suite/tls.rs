//! STARTTLS and implicit TLS.

use tokio_util::sync::CancellationToken;

use super::support::*;

#[tokio::test]
async fn commands_pipelined_after_starttls_are_discarded() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    // If the NOOP were kept, its 250 would be the first reply over TLS.
    c.send("STARTTLS\r\nNOOP\r\n").await;
    c.expect(220).await;
    let stream = tls_connect(c.into_inner(), h.server.certificate_chain()).await;
    let mut c = Client::new(stream);
    let r = c.cmd("EHLO client.test", 250).await;
    assert!(r.lines.len() > 1, "{r:?}");
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
        .await;
}

#[tokio::test]
async fn starttls_forgets_the_earlier_ehlo() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    let mut c = c.starttls(h.server.certificate_chain()).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 503)
        .await;
}

#[tokio::test]
async fn failed_handshake_ends_the_session() {
    let h = harness(config());
    let (mut c, task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("STARTTLS", 220).await;
    c.send("this is not a ClientHello\r\n").await;
    assert_eq!(ended(task).await, tidings_smtp::SessionEnd::TlsFailed);
}

#[tokio::test]
async fn implicit_tls_session() {
    let h = harness(config());
    let (near, far) = tokio::io::duplex(64 * 1024);
    let server = h.server.clone();
    let task = tokio::spawn(async move {
        server
            .session_implicit_tls(far, ip("192.0.2.44"), CancellationToken::new())
            .await
    });
    let mut c = Client::new(tls_connect(near, h.server.certificate_chain()).await);
    c.expect(220).await;
    let r = c.cmd("EHLO client.test", 250).await;
    assert!(r.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{r:?}");
    assert!(!r.lines.iter().any(|l| l == "STARTTLS"), "{r:?}");
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
        .await;
    c.send_message(USER, &["x@example.org"], SIMPLE).await;
    c.cmd("QUIT", 221).await;
    let sub = &h.handler.wait_accepted(1).await[0];
    assert!(sub.tls);
    assert_eq!(sub.client_ip, ip("192.0.2.44"));
    assert_eq!(ended(task).await, tidings_smtp::SessionEnd::Quit);
}

#[tokio::test]
async fn certificate_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut cfg = config();
    cfg.tls = tidings_smtp::TlsSource::Files {
        cert: cert.clone(),
        key: key.clone(),
    };
    let h = harness(cfg);
    assert_eq!(h.server.certificate_chain()[0], *ck.cert.der());
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("NOOP", 250).await;

    // Missing or empty files are set-up errors, not panics.
    let mut bad = config();
    bad.tls = tidings_smtp::TlsSource::Files {
        cert: dir.path().join("nope.pem"),
        key,
    };
    let handler = std::sync::Arc::new(TestHandler::default());
    let err = tidings_smtp::SmtpServer::new(std::sync::Arc::new(bad), handler.clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    std::fs::write(&cert, "").unwrap();
    let mut empty = config();
    empty.tls = tidings_smtp::TlsSource::Files {
        cert,
        key: dir.path().join("key.pem"),
    };
    assert!(matches!(
        tidings_smtp::SmtpServer::new(std::sync::Arc::new(empty), handler),
        Err(tidings_smtp::SmtpError::NoCertificate(_))
    ));
}
