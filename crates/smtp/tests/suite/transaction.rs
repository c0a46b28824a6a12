//! MAIL and RCPT: sequence, authentication, parameters, recipients.

use super::support::*;

#[tokio::test]
async fn mail_without_auth_is_refused() {
    let h = harness(config());
    // Plain connection, EHLO, no AUTH.
    let (mut c, _task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    let r = c.cmd("MAIL FROM:<app@example.com>", 530).await;
    assert_eq!(r.text(), "5.7.0 Authentication required");
    c.cmd("RCPT TO:<x@example.org>", 503).await;
    c.cmd("DATA", 503).await;
    // Over TLS but still without AUTH.
    let (mut c, _task) = h.connect_tls().await;
    c.cmd("MAIL FROM:<app@example.com>", 530).await;
    assert_eq!(h.handler.accepted(), 0);
}

#[tokio::test]
async fn commands_out_of_sequence_get_503() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>", 503).await.text(),
        "5.5.1 Send EHLO first"
    );
    let (mut c, _task) = h.connect_authed().await;
    assert_eq!(
        c.cmd("RCPT TO:<x@example.org>", 503).await.text(),
        "5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(
        c.cmd("DATA", 503).await.text(),
        "5.5.1 Need MAIL before DATA"
    );
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    assert_eq!(
        c.cmd("MAIL FROM:<app@example.com>", 503).await.text(),
        "5.5.1 Nested MAIL command"
    );
    assert_eq!(
        c.cmd("DATA", 503).await.text(),
        "5.5.1 Need RCPT before DATA"
    );
    // The transaction survived the errors.
    c.cmd("RCPT TO:<x@example.org>", 250).await;
    c.cmd("RSET", 250).await;
    c.cmd("RCPT TO:<x@example.org>", 503).await;
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let mut cfg = config();
    cfg.max_recipients = 3;
    let h = harness(cfg);
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    for i in 0..3 {
        c.cmd(&format!("RCPT TO:<r{i}@example.org>"), 250).await;
    }
    // A repeat is not another recipient.
    c.cmd("RCPT TO:<r0@example.org>", 250).await;
    assert_eq!(
        c.cmd("RCPT TO:<r3@example.org>", 452).await.text(),
        "4.5.3 Too many recipients"
    );
    c.cmd("DATA", 354).await;
    c.send(format!("{SIMPLE}.\r\n")).await;
    c.expect(250).await;
    let subs = h.handler.submissions();
    assert_eq!(
        subs[0].rcpt_to,
        ["r0@example.org", "r1@example.org", "r2@example.org"]
    );
}

#[tokio::test]
async fn recipient_refused_by_the_handler_is_not_kept() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<reject-me@example.org>", 550).await;
    c.cmd("DATA", 503).await;
    c.cmd("RCPT TO:<ok@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(format!("{SIMPLE}.\r\n")).await;
    c.expect(250).await;
    assert_eq!(h.handler.submissions()[0].rcpt_to, ["ok@example.org"]);
}

#[tokio::test]
async fn bad_addresses_get_501() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<no-at-sign>", 501).await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    assert_eq!(
        c.cmd("RCPT TO:<>", 501).await.text(),
        "5.1.3 Bad recipient address syntax"
    );
    c.cmd("RCPT TO:<a..b@example.org>", 501).await;
}

#[tokio::test]
async fn non_ascii_addresses_need_smtputf8() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    let r = c.cmd("MAIL FROM:<jörg@example.com>", 553).await;
    assert_eq!(r.text(), "5.6.7 Non-ASCII address requires SMTPUTF8");
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<zoë@example.org>", 553).await;
    c.cmd("RSET", 250).await;
    c.cmd("MAIL FROM:<jörg@example.com> SMTPUTF8", 250).await;
    c.cmd("RCPT TO:<zoë@example.org>", 250).await;
}

#[tokio::test]
async fn declared_size_over_the_limit_gets_552() {
    let mut cfg = config();
    cfg.max_message_bytes = 1000;
    let h = harness(cfg);
    let (mut c, _task) = h.connect_authed().await;
    let r = c.cmd("MAIL FROM:<app@example.com> SIZE=1001", 552).await;
    assert!(r.text().starts_with("5.3.4"), "{r:?}");
    c.cmd("MAIL FROM:<app@example.com> SIZE=1000 BODY=8BITMIME", 250)
        .await;
}

#[tokio::test]
async fn parameters_not_offered_get_555() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com> BODY=BINARYMIME", 555)
        .await;
    c.cmd("MAIL FROM:<app@example.com> RET=FULL", 555).await;
    c.cmd("MAIL FROM:<app@example.com> ENVID=abc", 555).await;
    c.cmd("MAIL FROM:<app@example.com> FROBNICATE=1", 555).await;
    c.cmd("MAIL FROM:<app@example.com> AUTH=<>", 250).await;
    c.cmd("RCPT TO:<a@example.org> NOTIFY=NEVER", 555).await;
}
