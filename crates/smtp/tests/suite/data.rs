//! DATA: what is handed over, and every way a message is refused without
//! reaching the handler.

use std::sync::atomic::Ordering;

use tidings_smtp::{Common, SessionEnd};

use super::support::*;

#[tokio::test]
async fn message_is_unstuffed_and_handed_over_with_its_envelope() {
    let h = harness(config());
    let (mut c, task) = h.connect_authed().await;
    let body = "Subject: dots\r\n\r\n..leading dot\r\n..\r\n\r\n...\r\nend\r\n";
    let r = c
        .send_message("app@example.com", &["a@example.org", "b@example.org"], body)
        .await;
    assert_eq!(r.code, 250);
    assert_eq!(r.text(), "2.0.0 OK queued as msg_1");
    // A second message on the same session.
    assert_eq!(
        c.send_message("", &["c@example.org"], SIMPLE).await.code,
        250
    );
    c.cmd("QUIT", 221).await;
    assert_eq!(ended(task).await, SessionEnd::Quit);
    let subs = h.handler.submissions();
    let s = &subs[0];
    assert_eq!(
        &s.raw[..],
        b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n\r\n..\r\nend\r\n"
    );
    assert_eq!(s.account, h.handler.account);
    assert_eq!(s.mail_from, "app@example.com");
    assert_eq!(s.rcpt_to, ["a@example.org", "b@example.org"]);
    assert!(s.tls && !s.smtputf8 && !s.body_8bit);
    assert_eq!(s.client_ip, ip("192.0.2.10"));
    assert_eq!(subs[1].mail_from, "");
    assert_eq!(&subs[1].raw[..], SIMPLE.as_bytes());
}

#[tokio::test]
async fn oversized_message_is_read_to_the_end_then_refused() {
    let mut cfg = config();
    cfg.max_message_bytes = 10_000;
    let h = harness(cfg);
    let (mut c, _task) = h.connect_authed().await;
    let big = format!(
        "Subject: big\r\n\r\n{}",
        ("x".repeat(900) + "\r\n").repeat(20)
    );
    let r = c.send_message(USER, &["a@example.org"], &big).await;
    assert_eq!(r.code, 552);
    assert_eq!(
        r.text(),
        "5.3.4 Message size exceeds fixed maximum message size"
    );
    // In step: the next command is a command, and a small message goes through.
    c.cmd("NOOP", 250).await;
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        250
    );
    assert_eq!(h.handler.accepted(), 1);
}

#[tokio::test]
async fn message_exactly_at_the_limit_is_accepted() {
    let mut cfg = config();
    cfg.max_message_bytes = SIMPLE.len();
    let h = harness(cfg);
    let (mut c, _task) = h.connect_authed().await;
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        250
    );
}

#[tokio::test]
async fn line_over_998_octets_rejects_the_message() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    let ok = format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(998));
    assert_eq!(
        c.send_message(USER, &["a@example.org"], &ok).await.code,
        250
    );
    let long = format!("Subject: x\r\n\r\n{}\r\nmore\r\n", "y".repeat(5000));
    let r = c.send_message(USER, &["a@example.org"], &long).await;
    assert_eq!(r.code, 554);
    assert_eq!(r.text(), "5.6.0 Message has a line longer than 998 octets");
    c.cmd("NOOP", 250).await;
    assert_eq!(h.handler.accepted(), 1);
}

#[tokio::test]
async fn bare_lf_rejects_the_message_and_never_ends_data() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<a@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    // "\n.\n" and "\r\n.\n" are not the end of data (SMTP smuggling).
    c.send(
        "Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@example.com>\r\n.\nRCPT TO:<v@example.org>\r\n",
    )
    .await;
    c.send(".\r\n").await;
    let r = c.expect(554).await;
    assert_eq!(r.text(), "5.6.0 Message has a line not ended by CRLF");
    c.cmd("NOOP", 250).await;
    assert_eq!(h.handler.accepted(), 0);
}

#[tokio::test]
async fn eight_bit_headers_need_smtputf8() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    let msg = "Subject: Grüße\r\n\r\nBody\r\n";
    let r = c.send_message(USER, &["a@example.org"], msg).await;
    assert_eq!(r.code, 550);
    assert_eq!(
        r.text(),
        "5.6.7 Non-ASCII header requires SMTPUTF8 in MAIL FROM"
    );
    assert_eq!(h.handler.accepted(), 0);

    c.cmd("MAIL FROM:<app@example.com> SMTPUTF8 BODY=8BITMIME", 250)
        .await;
    c.cmd("RCPT TO:<ünï@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(format!("{msg}.\r\n")).await;
    c.expect(250).await;
    let s = &h.handler.submissions()[0];
    assert!(s.smtputf8 && s.body_8bit);
    assert_eq!(s.rcpt_to, ["ünï@example.org"]);
    assert_eq!(&s.raw[..], msg.as_bytes());
}

#[tokio::test]
async fn eight_bit_body_without_8bitmime_is_accepted_and_flagged() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    let r = c
        .send_message(USER, &["a@example.org"], "Subject: x\r\n\r\nCafé\r\n")
        .await;
    assert_eq!(r.code, 250);
    let s = &h.handler.submissions()[0];
    assert!(s.body_8bit && !s.smtputf8);
}

#[tokio::test]
async fn handler_refusal_is_the_reply_and_ends_the_transaction() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    *h.handler.fail_accept.lock().unwrap() = Some(Common::StorageFailure.into());
    let r = c.send_message(USER, &["a@example.org"], SIMPLE).await;
    assert_eq!(r.code, 451);
    assert_eq!(r.text(), "4.3.0 Temporary failure, try again later");
    c.cmd("RCPT TO:<a@example.org>", 503).await;
    *h.handler.fail_accept.lock().unwrap() = Some(Common::Unparseable.into());
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        554
    );
    *h.handler.fail_accept.lock().unwrap() = None;
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        250
    );
    assert_eq!(h.handler.accept_calls.load(Ordering::SeqCst), 3);
    assert_eq!(h.handler.submissions().len(), 1);
}

#[tokio::test]
async fn disconnect_mid_data_accepts_nothing() {
    let h = harness(config());
    let (mut c, task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<a@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send("Subject: half\r\n\r\nthe first half\r\n").await;
    drop(c);
    assert_eq!(ended(task).await, SessionEnd::Disconnected);
    assert_eq!(h.handler.accepted(), 0);
}

#[tokio::test]
async fn framing_does_not_depend_on_how_the_bytes_arrive() {
    let h = harness(config());
    let line998 = "z".repeat(998);
    let body = format!("Subject: chunks\r\n\r\n..dot\r\n{line998}\r\n.x\r\n\r\nend\r\n");
    let expected = format!("Subject: chunks\r\n\r\n.dot\r\n{line998}\r\nx\r\n\r\nend\r\n");
    // A long line ended by a bare LF, then ".": not the end of data.
    let long = format!(
        "Subject: long\r\n\r\n{}\n.\r\nstill data\r\n",
        "y".repeat(1500)
    );
    for chunk in [1, 2, 3, 5, 7, 64, 999, 1001] {
        let (mut c, _task) = h.connect_authed().await;
        for (body, code) in [(&body, 250), (&long, 554)] {
            c.cmd("MAIL FROM:<app@example.com>", 250).await;
            c.cmd("RCPT TO:<a@example.org>", 250).await;
            c.cmd("DATA", 354).await;
            for piece in format!("{body}.\r\n").as_bytes().chunks(chunk) {
                c.send(piece).await;
            }
            assert_eq!(c.expect(code).await.code, code, "chunks of {chunk}");
        }
        c.cmd("NOOP", 250).await;
    }
    let subs = h.handler.submissions();
    assert_eq!(subs.len(), 8);
    for s in subs {
        assert_eq!(std::str::from_utf8(&s.raw).unwrap(), expected);
    }
}

/// Send one message's DATA exactly as given (it must end the data itself)
/// and return the final reply.
async fn data_as_is<S>(c: &mut Client<S>, wire: &[u8]) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<a@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(wire).await;
    c.reply().await.expect("final reply")
}

#[tokio::test]
async fn bare_cr_rejects_the_message_and_never_ends_data() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    // The end-of-data forms of SMTP smuggling that use a bare CR: none of
    // them ends the data here, and each makes the message refused, so it
    // is never relayed to a server that might read it as framing.
    let smuggled = "MAIL FROM:<evil@example.com>\r\nRCPT TO:<v@example.org>\r\nDATA\r\n";
    for form in ["\r.\r", "\r\n.\r", "\r.\r\n", "\n.\r\n"] {
        let wire = format!("Subject: x\r\n\r\nhi{form}{smuggled}Subject: y\r\n\r\nz\r\n.\r\n");
        let r = data_as_is(&mut c, wire.as_bytes()).await;
        assert_eq!(r.code, 554, "{form:?}: {r:?}");
        assert!(
            r.text().starts_with("5.6.0 Message has a"),
            "{form:?}: {r:?}"
        );
        // In step: the smuggled commands were data, not commands.
        c.cmd("NOOP", 250).await;
    }
    // A bare CR inside a line, and one just before the CRLF.
    for wire in [
        "Subject: x\r\n\r\nan odd\rline\r\n.\r\n",
        "Subject: x\r\n\r\nend\r\r\n.\r\n",
    ] {
        let r = data_as_is(&mut c, wire.as_bytes()).await;
        assert_eq!(r.text(), "5.6.0 Message has a CR not followed by LF");
    }
    assert_eq!(h.handler.accepted(), 0);
    assert_eq!(
        c.send_message(USER, &["a@example.org"], SIMPLE).await.code,
        250
    );
}

#[tokio::test]
async fn nul_rejects_the_message() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    for wire in [
        &b"Subject: x\r\n\r\nnul \0 inside\r\n.\r\n"[..],
        b"Subject: \0\r\n\r\nbody\r\n.\r\n",
    ] {
        let r = data_as_is(&mut c, wire).await;
        assert_eq!(r.code, 554);
        assert_eq!(r.text(), "5.6.0 Message has a NUL octet");
    }
    c.cmd("NOOP", 250).await;
    assert_eq!(h.handler.accepted(), 0);
}
