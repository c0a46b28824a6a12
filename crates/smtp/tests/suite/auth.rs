//! AUTH: only over TLS, PLAIN and LOGIN, failures delayed and limited per
//! session and per IP.

use std::time::Duration;

use tidings_smtp::SessionEnd;

use super::support::*;

#[tokio::test]
async fn auth_before_starttls_is_refused_without_checking() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    let r = c
        .cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 538)
        .await;
    assert_eq!(
        r.text(),
        "5.7.11 Encryption required for requested authentication mechanism"
    );
    c.cmd("AUTH LOGIN", 538).await;
    assert_eq!(h.handler.auths(), 0);
}

#[tokio::test]
async fn auth_plain_initial_response_and_challenge() {
    let h = harness(config());
    let (mut c, _task) = h.connect_tls().await;
    let r = c
        .cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
        .await;
    assert_eq!(r.text(), "2.7.0 Authentication succeeded");
    c.cmd("AUTH PLAIN", 503).await;

    let (mut c, _task) = h.connect_tls().await;
    let r = c.cmd("AUTH PLAIN", 334).await;
    assert_eq!(r.text(), "");
    c.cmd(&plain(USER, PASS), 235).await;
    // authzid equal to the user is fine.
    let (mut c, _task) = h.connect_tls().await;
    c.cmd(
        &format!("AUTH PLAIN {}", b64(&format!("{USER}\0{USER}\0{PASS}"))),
        235,
    )
    .await;
}

#[tokio::test]
async fn auth_login_with_and_without_initial_response() {
    let h = harness(config());
    let (mut c, _task) = h.connect_tls().await;
    assert_eq!(c.cmd("AUTH LOGIN", 334).await.text(), "VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(USER), 334).await.text(), "UGFzc3dvcmQ6");
    c.cmd(&b64(PASS), 235).await;

    let (mut c, _task) = h.connect_tls().await;
    c.cmd(&format!("AUTH LOGIN {}", b64(USER)), 334).await;
    c.cmd(&b64(PASS), 235).await;
    c.send_message(USER, &["x@example.org"], SIMPLE).await;
    assert_eq!(
        h.handler.wait_accepted(1).await[0].account,
        h.handler.account
    );
}

#[tokio::test]
async fn malformed_exchanges() {
    let h = harness(config());
    let (mut c, _task) = h.connect_tls().await;
    c.cmd("AUTH CRAM-MD5", 504).await;
    c.cmd("AUTH LOGIN", 334).await;
    assert_eq!(
        c.cmd("*", 501).await.text(),
        "5.7.0 Authentication cancelled"
    );
    c.cmd("AUTH PLAIN !!!notbase64", 501).await;
    c.cmd(&format!("AUTH PLAIN {}", b64("no nul bytes")), 501)
        .await;
    assert_eq!(h.handler.auths(), 0);
    // Acting as someone else is a failed attempt.
    c.cmd(
        &format!(
            "AUTH PLAIN {}",
            b64(&format!("boss@example.com\0{USER}\0{PASS}"))
        ),
        535,
    )
    .await;
    assert_eq!(h.handler.auths(), 0);
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
        .await;
}

#[tokio::test(start_paused = true)]
async fn wrong_password_gets_535_after_a_growing_delay_then_421() {
    let mut cfg = config();
    cfg.auth.delay = Duration::from_secs(1);
    cfg.auth.max_delay = Duration::from_secs(30);
    let h = harness(cfg);
    let (mut c, task) = h.connect_tls().await;
    for expected in [1u64, 2] {
        let start = tokio::time::Instant::now();
        let r = c
            .cmd(&format!("AUTH PLAIN {}", plain(USER, "wrong")), 535)
            .await;
        assert_eq!(r.text(), "5.7.8 Authentication credentials invalid");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(expected) && waited < Duration::from_secs(expected + 1),
            "waited {waited:?}"
        );
    }
    // The third failure in a session closes it.
    let r = c.cmd(&format!("AUTH LOGIN {}", b64(USER)), 334).await;
    assert_eq!(r.text(), "UGFzc3dvcmQ6");
    let r = c.cmd(&b64("wrong"), 421).await;
    assert!(r.text().starts_with("4.7.0"), "{r:?}");
    c.closed().await;
    assert_eq!(ended(task).await, SessionEnd::TooManyAuthFailures);
    assert_eq!(h.handler.auths(), 3);
}

#[tokio::test]
async fn failures_are_counted_per_ip_across_sessions() {
    let mut cfg = config();
    cfg.auth.max_failures_per_session = 10;
    cfg.auth.max_failures_per_ip = 4;
    let h = harness(cfg);
    let attacker = ip("198.51.100.7");
    let (mut c, _task) = h.connect_tls_from(attacker).await;
    for _ in 0..2 {
        c.cmd(&format!("AUTH PLAIN {}", plain(USER, "guess")), 535)
            .await;
    }
    // Reconnecting does not reset the count.
    let (mut c, task) = h.connect_tls_from(attacker).await;
    for _ in 0..2 {
        c.cmd(&format!("AUTH PLAIN {}", plain(USER, "guess")), 535)
            .await;
    }
    assert_eq!(h.handler.auths(), 4);
    // Now even the right password is not checked.
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 421)
        .await;
    c.closed().await;
    assert_eq!(ended(task).await, SessionEnd::TooManyAuthFailures);
    let (mut c, _task) = h.connect_tls_from(attacker).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 421)
        .await;
    assert_eq!(h.handler.auths(), 4);
    // Another client is not affected.
    let (mut c, _task) = h.connect_tls_from(ip("203.0.113.9")).await;
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASS)), 235)
        .await;
}
