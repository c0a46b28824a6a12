//! The inbound MX takes mail for postmaster (RFC 5321 section 4.5.1): any
//! case, without a domain or at its own domain, never at someone else's.
//! What arrives there is handled as a possible report: a bounce sent to
//! postmaster is matched to its message by the Message-ID it quotes.

use serde_json::json;
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, DEADLINE};

use crate::inbound::{dsn, smtp_send};

#[tokio::test]
async fn postmaster_is_accepted_and_a_bounce_sent_there_is_recorded() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    let inbound = t.running.as_ref().unwrap().inbound_addr.unwrap().port();

    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &format!(
            "import smtplib\ns=smtplib.SMTP('127.0.0.1',{inbound})\ns.ehlo()\ns.mail('someone@example.org')\nprint(*[s.rcpt(r)[0] for r in ['Postmaster', 'postmaster', 'POSTMASTER@tidings.test', 'postmaster@elsewhere.example']])\ns.quit()"
        )])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "250 250 250 550",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    t.api.add_domain("sender.test").await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": "gone@example.test", "subject": "hello", "text": "hi"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let smtp_id = r.body["smtp_message_id"].as_str().unwrap().to_string();
    wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().pop()
    })
    .await;
    // A remote MTA that ignores the return path bounces to postmaster.
    smtp_send(
        inbound,
        "",
        "Postmaster",
        &dsn("gone@example.test", &smtp_id),
    )
    .await;
    let s = wait_until("the bounce recorded", DEADLINE, || async {
        let s = t.api.get("/v1/suppressions/gone@example.test").await;
        (s.status == 200).then_some(s)
    })
    .await;
    assert_eq!(s.body["reason"], "hard_bounce");
    t.stop().await;
}
