//! Reports that come back as mail: a DSN sent over SMTP to the VERP return
//! path, an ARF complaint to the feedback-loop address, and reports posted
//! over HTTP — each becomes the right event on the right message, or is
//! kept for the operator when it matches nothing.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, Receiver, DEADLINE};

pub(crate) fn dsn(rcpt: &str, message_id: &str) -> String {
    dsn_with(
        rcpt,
        message_id,
        "failed",
        "5.1.1",
        &format!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
    )
}

fn dsn_with(rcpt: &str, message_id: &str, action: &str, status: &str, diagnostic: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: bounces\r\nSubject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.test\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: app@sender.test\r\nTo: {rcpt}\r\nMessage-ID: {message_id}\r\nSubject: hello\r\n\r\n--B--\r\n"
    )
}

pub(crate) fn arf(rcpt: &str, message_id: &str) -> String {
    format!(
        "From: staff@hotmail.example\r\nTo: fbl@tidings.test\r\nSubject: complaint about message\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n\
Original-Rcpt-To: {rcpt}\r\nSource-IP: 192.0.2.1\r\n\r\n\
--F\r\nContent-Type: message/rfc822\r\n\r\nFrom: app@sender.test\r\nTo: {rcpt}\r\nMessage-ID: {message_id}\r\nSubject: hello\r\n\r\nbody\r\n--F--\r\n"
    )
}

pub(crate) async fn smtp_send(port: u16, from: &str, to: &str, msg: &str) {
    let script = format!(
        "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',{port})\ns.sendmail({from:?},[{to:?}],sys.stdin.buffer.read())\ns.quit()\n"
    );
    let mut child = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "smtplib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Send the test's one message (its sender domain is added first).
async fn send_one(t: &InProcess, to: &str) -> (String, String) {
    t.api.add_domain("sender.test").await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": to, "subject": "hello", "text": "hi"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["smtp_message_id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_dsn_to_the_verp_address_bounces_the_right_recipient() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["sent", "bounce"]}))
        .await;
    let (id, smtp_id) = send_one(&t, "gone@example.test").await;
    let msgs = wait_until("delivery", DEADLINE, || async {
        (mx.messages().len() == 1).then(|| mx.messages())
    })
    .await;
    let verp = msgs[0]
        .lines()
        .find_map(|l| l.strip_prefix("X-Envelope-From: "))
        .unwrap()
        .to_string();
    assert!(
        verp.starts_with("b-") && verp.ends_with("@tidings.test"),
        "VERP return path: {verp}"
    );

    // The remote MTA later bounces it to the return path, over SMTP.
    let inbound = t.running.as_ref().unwrap().inbound_addr.unwrap().port();
    smtp_send(inbound, "", &verp, &dsn("gone@example.test", &smtp_id)).await;
    let events: Vec<Value> = rx.wait_for_json(2, DEADLINE).await;
    let bounce = events.iter().find(|e| e["type"] == "bounce").unwrap();
    assert_eq!(bounce["data"]["message_id"], id);
    assert_eq!(bounce["data"]["email"], "gone@example.test");
    assert_eq!(bounce["data"]["bounce_type"], "hard");
    assert_eq!(bounce["data"]["status"], "5.1.1");
    assert_eq!(bounce["data"]["reason"], "user_unknown");
    assert_eq!(bounce["data"]["source"], "dsn");
    let s = t.api.get("/v1/suppressions/gone@example.test").await;
    assert_eq!(
        (s.status, s.body["reason"].as_str()),
        (200, Some("hard_bounce"))
    );
    // The recipient it was sent to now reads as bounced, not sent.
    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(m.body["recipients"][0]["status"], "bounced", "{:?}", m.body);

    // The MX is never a relay: a foreign or forged address is refused at RCPT.
    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &format!(
            "import smtplib\ns=smtplib.SMTP('127.0.0.1',{inbound})\ns.ehlo()\ns.mail('')\nprint(s.rcpt('someone@elsewhere.example')[0], s.rcpt('b-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tidings.test')[0])\ns.quit()"
        )])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "550 550");
    t.stop().await;
}

#[tokio::test]
async fn an_arf_complaint_is_matched_by_its_message_id() {
    let mx = Mx::start();
    let t = mx
        .app(|c| {
            c.inbound.feedback_addresses = vec!["fbl@tidings.test".into()];
        })
        .await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["complaint"]}))
        .await;
    let (id, smtp_id) = send_one(&t, "annoyed@example.test").await;
    let inbound = t.running.as_ref().unwrap().inbound_addr.unwrap().port();
    smtp_send(
        inbound,
        "staff@hotmail.example",
        "fbl@tidings.test",
        &arf("annoyed@example.test", &smtp_id),
    )
    .await;
    let got = rx.wait_for(1, DEADLINE).await;
    let c = got[0].json();
    assert_eq!(c["type"], "complaint");
    assert_eq!(c["data"]["message_id"], id);
    assert_eq!(c["data"]["email"], "annoyed@example.test");
    assert_eq!(c["data"]["feedback_type"], "abuse");
    let s = t.api.get("/v1/suppressions/annoyed@example.test").await;
    assert_eq!(
        (s.status, s.body["reason"].as_str()),
        (200, Some("complaint"))
    );
    t.stop().await;
}

#[tokio::test]
async fn reports_over_http_affect_only_matching_messages() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["bounce", "complaint", "unsubscribe"]}),
        )
        .await;
    let (id, smtp_id) = send_one(&t, "x@nowhere.invalid").await;

    // A report about a message nobody sent: kept for the operator, no event.
    let r = t
        .api
        .post_raw(
            "/v1/inbound",
            dsn("x@nowhere.invalid", "<unknown@elsewhere>"),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(
        (r.body["kind"].as_str(), r.body["matched"].as_bool()),
        (Some("bounce"), Some(false))
    );
    let unmatched = t.app().unmatched_reports(10).await.unwrap();
    assert_eq!(unmatched.len(), 1);

    // An auto-reply is not a bounce.
    let vacation = "From: x@nowhere.invalid\r\nTo: app@sender.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nI am away.\r\n";
    let r = t.api.post_raw("/v1/inbound", vacation).await;
    assert_eq!(
        (r.body["kind"].as_str(), r.body["matched"].as_bool()),
        (Some("auto_reply"), Some(false))
    );

    // Another account cannot bounce this account's message.
    let other = t.app().create_account("other", None).await.unwrap();
    let key = t.app().create_api_key(other.id, "k").await.unwrap();
    let r = t
        .api
        .with_key(key.key.expose())
        .post_raw("/v1/inbound", dsn("x@nowhere.invalid", &smtp_id))
        .await;
    assert_eq!(r.body["matched"], false);

    // The owner can.
    let r = t
        .api
        .post_raw("/v1/inbound", dsn("x@nowhere.invalid", &smtp_id))
        .await;
    assert_eq!(r.body["matched"], true, "{:?}", r.body);
    let ev = wait_until("the DSN bounce", DEADLINE, || async {
        rx.requests()
            .iter()
            .map(|r| r.json())
            .find(|e| e["type"] == "bounce" && e["data"]["source"] == "dsn")
    })
    .await;
    assert_eq!(ev["data"]["message_id"], id);
    assert_eq!(ev["data"]["source"], "dsn");
    let empty = t.api.post_raw("/v1/inbound", vec![]).await;
    assert_eq!((empty.status, empty.code()), (422, "invalid_message"));
    t.stop().await;
}

#[tokio::test]
async fn a_delayed_dsn_is_a_deferred_event_not_a_bounce() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["deferred", "bounce"]}))
        .await;
    let (id, smtp_id) = send_one(&t, "slow@nowhere.invalid").await;
    let diagnostic = "452 4.2.2 Mailbox full, still trying";
    let report = dsn_with(
        "slow@nowhere.invalid",
        &smtp_id,
        "delayed",
        "4.2.2",
        diagnostic,
    );
    let r = t.api.post_raw("/v1/inbound", report).await;
    assert_eq!(r.body["matched"], true, "{:?}", r.body);
    let ev = wait_until("the deferred event of the DSN", DEADLINE, || async {
        rx.requests()
            .iter()
            .map(|r| r.json())
            .find(|e| e["type"] == "deferred" && e["data"]["smtp_response"] == diagnostic)
    })
    .await;
    assert_eq!(ev["data"]["message_id"], id);
    assert_eq!(ev["data"]["email"], "slow@nowhere.invalid");
    assert_eq!(ev["data"]["remote_mta"], "mx.example.test");
    // The report made that one event and nothing else (no bounce, so no
    // suppression from it).
    assert_eq!(r.body["events"], json!([ev["id"]]), "{:?}", r.body);
    t.stop().await;
}

/// A DSN that refuses the message for its size faults the message, not the
/// address: a block, three times over, and the address is never suppressed
/// (a soft bounce would have been, at the third).
#[tokio::test]
async fn a_dsn_about_the_messages_size_blocks_and_suppresses_no_one() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["block", "bounce"]}))
        .await;
    t.api.add_domain("sender.test").await;
    for i in 0..3 {
        let r = t
            .api
            .post(
                "/v1/messages",
                &json!({"from": "app@sender.test", "to": "big@example.test", "subject": "hello", "text": "hi"}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let smtp_id = r.body["smtp_message_id"].as_str().unwrap().to_string();
        // Delivered first; the relay's DSN comes later.
        wait_until("the delivery", DEADLINE, || async {
            (mx.messages().len() == i + 1).then_some(())
        })
        .await;
        let report = dsn_with(
            "big@example.test",
            &smtp_id,
            "failed",
            "5.3.4",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        );
        let r = t.api.post_raw("/v1/inbound", report).await;
        assert_eq!(r.body["matched"], true, "{:?}", r.body);
        let events = rx.wait_for_json(i + 1, DEADLINE).await;
        let ev = &events[i];
        assert_eq!(
            (ev["type"].as_str(), ev["data"]["reason"].as_str()),
            (Some("block"), Some("email_too_large")),
            "{ev}"
        );
        assert_eq!(ev["data"]["message_id"], id);
        let m = t.api.get(&format!("/v1/messages/{id}")).await;
        assert_eq!(m.body["recipients"][0]["status"], "blocked");
    }
    let s = t.api.get("/v1/suppressions/big@example.test").await;
    assert_eq!(s.status, 404, "not suppressed: {:?}", s.body);
    t.stop().await;
}
