//! Whom outbound mail trusts: the smarthost's certificate is verified (the
//! web PKI roots by default, or the operator's CA file), credentials never
//! go out in clear, an MX gets opportunistic TLS and the `sent` event says
//! whether it was used, and a reply that is not SMTP defers the delivery
//! instead of panicking. Against a real TLS SMTP server on loopback.

use serde_json::{json, Value};
use tidings_testkit::mx::route;
use tidings_testkit::{wait_until, InProcess, DEADLINE};

use crate::smtp_peer::{self_signed, Options, SmtpPeer};

/// Send one message to `to` and wait for its first `sent` or `deferred`.
async fn outcome(t: &InProcess, to: &str) -> Value {
    t.api.add_domain("sender.test").await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": to, "subject": "trust", "text": "hi"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    wait_until("the delivery's outcome", DEADLINE, || async {
        let events = t.api.get("/v1/events").await.body["data"].clone();
        events
            .as_array()?
            .iter()
            .find(|e| e["type"] == "sent" || e["type"] == "deferred")
            .cloned()
    })
    .await
}

fn smarthost(c: &mut tidings::Config, peer: &SmtpPeer) {
    c.outbound.smarthost = Some(format!("127.0.0.1:{}", peer.port));
    c.outbound.smarthost_user = Some("relay-user".into());
    c.outbound.smarthost_password = Some("relay-secret".into());
}

#[tokio::test]
async fn a_smarthost_with_an_untrusted_certificate_is_refused() {
    let peer = SmtpPeer::start(Options {
        cert: Some(self_signed()),
        ..Options::default()
    })
    .await;
    let t = InProcess::start(|c| smarthost(c, &peer)).await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "deferred", "{e}");
    let why = e["data"]["smtp_response"].as_str().unwrap();
    assert!(
        why.starts_with("451 4.7.5 TLS with 127.0.0.1") && why.contains("certificate"),
        "{why}"
    );
    assert!(peer.got("STARTTLS"));
    assert!(
        !peer.got("AUTH") && !peer.got("MAIL"),
        "{:?}",
        peer.commands()
    );
    t.stop().await;
}

#[tokio::test]
async fn a_smarthost_whose_ca_is_configured_gets_auth_over_tls() {
    let cert = self_signed();
    let peer = SmtpPeer::start(Options {
        cert: Some(cert.clone()),
        ..Options::default()
    })
    .await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), cert.cert.pem()).unwrap();
    let ca_path = ca.path().to_path_buf();
    let t = InProcess::start(|c| {
        smarthost(c, &peer);
        c.outbound.smarthost_ca_file = Some(ca_path);
    })
    .await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "sent", "{e}");
    assert_eq!(e["data"]["tls"], true);
    let auth: Vec<_> = peer
        .commands()
        .into_iter()
        .filter(|c| c.line.starts_with("AUTH"))
        .collect();
    assert_eq!(auth.len(), 1, "{:?}", peer.commands());
    assert!(auth[0].tls, "AUTH came before TLS");
    assert!(peer
        .commands()
        .iter()
        .all(|c| c.tls || !c.line.starts_with("MAIL")));
    t.stop().await;
}

#[tokio::test]
async fn a_smarthost_without_starttls_never_receives_the_credentials() {
    let peer = SmtpPeer::start(Options::default()).await;
    let t = InProcess::start(|c| smarthost(c, &peer)).await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "deferred", "{e}");
    let why = e["data"]["smtp_response"].as_str().unwrap();
    assert!(
        why.starts_with("451 4.7.10") && why.contains("allow_plaintext_auth"),
        "{why}"
    );
    assert!(peer.got("EHLO"));
    assert!(
        !peer.got("AUTH") && !peer.got("MAIL"),
        "{:?}",
        peer.commands()
    );
    t.stop().await;
}

#[tokio::test]
async fn plaintext_auth_is_sent_only_when_allowed() {
    let peer = SmtpPeer::start(Options::default()).await;
    let t = InProcess::start(|c| {
        smarthost(c, &peer);
        c.outbound.allow_plaintext_auth = true;
    })
    .await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "sent", "{e}");
    assert_eq!(e["data"]["tls"], false);
    assert!(peer.got("AUTH"));
    t.stop().await;
}

#[tokio::test]
async fn an_mx_gets_opportunistic_tls_and_no_credentials() {
    let peer = SmtpPeer::start(Options {
        cert: Some(self_signed()),
        ..Options::default()
    })
    .await;
    let port = peer.port;
    let t = InProcess::start(move |c| {
        route(c, port);
        // Credentials are the smarthost's, for no other host.
        c.outbound.smarthost_user = Some("relay-user".into());
        c.outbound.smarthost_password = Some("relay-secret".into());
    })
    .await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "sent", "a self-signed MX is fine: {e}");
    assert_eq!(e["data"]["tls"], true);
    assert!(peer
        .commands()
        .iter()
        .any(|c| c.tls && c.line.starts_with("MAIL")));
    assert!(!peer.got("AUTH"));
    t.stop().await;
}

#[tokio::test]
async fn a_reply_that_is_not_smtp_defers_the_delivery() {
    let peer = SmtpPeer::start(Options {
        raw_reply: Some(("MAIL", "25é accepted\r\n".as_bytes().to_vec())),
        ..Options::default()
    })
    .await;
    let port = peer.port;
    let t = InProcess::start(move |c| route(c, port)).await;
    let e = outcome(&t, "someone@example.test").await;
    assert_eq!(e["type"], "deferred", "{e}");
    let why = e["data"]["smtp_response"].as_str().unwrap();
    assert!(
        why.starts_with("451 4.4.1") && why.contains("25\\xc3\\xa9 accepted"),
        "{why}"
    );
    t.stop().await;
}
