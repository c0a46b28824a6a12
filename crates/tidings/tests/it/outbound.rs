//! Outbound delivery to a real SMTP server (aiosmtpd) on loopback, which
//! accepts, defers, rejects and blocks recipients by script; each outcome
//! arrives at a webhook as the right event.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, Receiver, DEADLINE};

#[tokio::test]
async fn each_smtp_outcome_becomes_the_right_event() {
    each_outcome(Mx::start()).await;
}

/// The same, one command and reply at a time.
#[tokio::test]
async fn each_smtp_outcome_without_pipelining() {
    each_outcome(Mx::start_with(false)).await;
}

async fn each_outcome(mx: Mx) {
    let t = mx.app(|_| {}).await;
    t.api.add_domain("sender.test").await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["sent", "deferred", "bounce", "block"]}),
        )
        .await;
    let raw = "From: App <app@sender.test>\r\nTo: ok@example.test, defer@example.test\r\nCc: unknown@example.test, blocked@example.test\r\nSubject: Outbound\r\nX-Tidings-Custom-ID: out-1\r\n\r\nHello over SMTP\r\n.leading dot\r\n";
    let r = t.api.post_raw("/v1/messages", raw).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();

    let events: Vec<Value> = rx.wait_for_json(4, DEADLINE).await;
    let by = |email: &str| {
        events
            .iter()
            .find(|e| e["data"]["email"] == email)
            .unwrap_or_else(|| panic!("{email}: {events:?}"))
            .clone()
    };

    let sent = by("ok@example.test");
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["data"]["message_id"], id);
    assert_eq!(sent["data"]["custom_id"], "out-1");
    assert_eq!(sent["data"]["remote_mta"], "127.0.0.1");
    assert!(sent["data"]["smtp_response"]
        .as_str()
        .unwrap()
        .starts_with("250 2.0.0 Ok: queued"));
    assert_eq!(sent["data"]["attempt"], 1);
    assert_eq!(sent["data"]["tls"], false, "the test MX offers no STARTTLS");

    let deferred = by("defer@example.test");
    assert_eq!(deferred["type"], "deferred");
    assert!(deferred["data"]["smtp_response"]
        .as_str()
        .unwrap()
        .starts_with("451 4.2.0"));
    assert!(deferred["data"]["next_attempt_at"].is_string());

    let bounce = by("unknown@example.test");
    assert_eq!(bounce["type"], "bounce");
    assert_eq!(bounce["data"]["bounce_type"], "hard");
    assert_eq!(bounce["data"]["status"], "5.1.1");
    assert_eq!(bounce["data"]["reason"], "user_unknown");
    assert_eq!(bounce["data"]["source"], "smtp");

    let block = by("blocked@example.test");
    assert_eq!(block["type"], "block");
    assert_eq!(block["data"]["status"], "5.7.1");
    assert_eq!(block["data"]["reason"], "reputation");

    // The message arrived once, for the accepted recipient, control headers gone.
    let msgs = mx.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("X-Envelope-To: ok@example.test\r\n"));
    assert!(
        msgs[0].contains("X-Envelope-From: b-") && msgs[0].contains("@tidings.test\r\n"),
        "a VERP return path"
    );
    assert!(
        msgs[0].contains("\r\n.leading dot\r\n"),
        "dot-stuffing round-trips"
    );
    assert!(!msgs[0].to_ascii_lowercase().contains("x-tidings"));

    // A hard bounce suppresses the address; the next message drops it.
    let s = t.api.get("/v1/suppressions/unknown@example.test").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["reason"], "hard_bounce");
    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    let statuses: Vec<(String, String)> = m.body["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(statuses.contains(&("ok@example.test".into(), "sent".into())));
    assert!(statuses.contains(&("defer@example.test".into(), "deferred".into())));
    assert!(statuses.contains(&("unknown@example.test".into(), "bounced".into())));
    assert!(statuses.contains(&("blocked@example.test".into(), "blocked".into())));
    t.stop().await;
}

#[tokio::test]
async fn smtp_submission_with_starttls_and_auth_is_delivered() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    t.api.add_domain("sender.test").await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["sent"]}))
        .await;
    let smtp = t.running.as_ref().unwrap().smtp_addr.unwrap();
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port})
s.ehlo(); s.starttls(context=ctx); s.ehlo()
try:
    s.login("apikey", "tk_wrong")
    sys.exit("a wrong key was accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login("apikey", "{key}")
msg = "From: app@sender.test\r\nTo: ok@example.test\r\nSubject: via smtp\r\nX-Tidings-Custom-ID: smtp-1\r\n\r\nhi\r\n"
refused = s.sendmail("app@sender.test", ["ok@example.test"], msg)
assert refused == {{}}, refused
code, text = s.docmd("MAIL", "FROM:<app@sender.test>")
assert code == 250, (code, text)
code, text = s.docmd("RCPT", "TO:<not an address>")
assert code >= 500, (code, text)
s.quit()
print("OK")
"#,
        port = smtp.port(),
        key = t.api.key
    );
    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rx.wait_for(1, DEADLINE).await;
    let ev = got[0].json();
    assert_eq!(ev["type"], "sent");
    assert_eq!(ev["data"]["custom_id"], "smtp-1");
    assert_eq!(ev["data"]["email"], "ok@example.test");
    wait_until("the message at the MX", DEADLINE, || async {
        (mx.messages().len() == 1).then_some(())
    })
    .await;
    assert!(mx.messages()[0].contains("Subject: via smtp"));
    t.stop().await;
}

#[tokio::test]
async fn smtp_refuses_unauthenticated_relay() {
    let t = InProcess::start(|_| {}).await;
    let smtp = t.running.as_ref().unwrap().smtp_addr.unwrap();
    let script = format!(
        r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", {port})
s.ehlo()
assert "auth" not in s.esmtp_features, "AUTH must not be offered before TLS"
code, _ = s.docmd("AUTH", "PLAIN AGFwaWtleQB4")
assert code in (530, 538), code
code, _ = s.docmd("MAIL", "FROM:<a@example.com>")
assert code == 530, code
s.quit()
print("OK")
"#,
        port = smtp.port()
    );
    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.api.get("/v1/events").await.body["data"], json!([]));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_smtp_submissions_loses_no_accepted_message() {
    use std::collections::HashSet;
    let mx = Mx::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bin = mx.binary(env!("CARGO_BIN_EXE_tidings"), dir.path(), &[]);
    bin.api().add_domain("sender.test").await;
    let smtp = bin.smtp_addr.expect("smtp listener");
    let accepted = dir.path().join("accepted.txt");
    let refused = dir.path().join("refused.txt");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/burst.py");
    let mut burst = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args([
            script,
            "127.0.0.1",
            &smtp.port().to_string(),
            &bin.key,
            "4",
            "150",
            accepted.to_str().unwrap(),
            refused.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let read = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    wait_until(
        "submissions under way",
        std::time::Duration::from_secs(60),
        || async { (read(&accepted).len() >= 100).then_some(()) },
    )
    .await;
    bin.kill9();
    burst.wait().await.unwrap();
    let acked: HashSet<String> = read(&accepted).into_iter().collect();
    assert!(acked.len() < 4 * 150, "the kill came too late");
    let rejected: Vec<String> = read(&refused);
    assert!(
        !rejected.is_empty() && rejected.iter().all(|l| l.ends_with(" 554")),
        "{rejected:?}"
    );

    bin.restart();
    let delivered: HashSet<String> = wait_until(
        "every acknowledged message at the MX",
        std::time::Duration::from_secs(180),
        || async {
            let subjects: HashSet<String> = mx
                .messages()
                .iter()
                .filter_map(|m| {
                    m.lines()
                        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                })
                .collect();
            acked.is_subset(&subjects).then_some(subjects)
        },
    )
    .await;
    for r in rejected {
        let subject = r.split(' ').next().unwrap();
        assert!(
            !delivered.contains(subject),
            "{subject} was refused but delivered"
        );
    }
}

/// Verify a received message with dkimpy, answering its DNS query with
/// the record the API told us to publish.
pub(crate) fn dkimpy_verifies(message: &str, dns_name: &str, dns_value: &str) -> bool {
    let script = format!(
        r#"
import dkim, sys
msg = sys.stdin.buffer.read()
# Drop the test MX's own envelope lines: they were added after signing.
lines = msg.split(b"\r\n")
while lines and lines[0].startswith(b"X-Envelope-"):
    lines.pop(0)
msg = b"\r\n".join(lines)
def dns(name, timeout=5):
    return {value:?}.encode() if name.decode().rstrip(".") == {name:?} else None
print("ok" if dkim.verify(msg, dnsfunc=dns) else "bad")
"#,
        value = dns_value,
        name = dns_name
    );
    crate::python(&script, message.as_bytes()).0 == "ok"
}

#[tokio::test]
async fn outbound_mail_is_dkim_signed_with_the_domains_key() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    let mut records = Vec::new();
    for (domain, alg) in [("sender.test", "rsa2048"), ("ed.sender2.test", "ed25519")] {
        let r = t
            .api
            .post("/v1/domains", &json!({"domain": domain, "algorithm": alg}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["dns"]["type"], "TXT");
        assert!(r.body["dns"]["name"]
            .as_str()
            .unwrap()
            .ends_with(&format!("._domainkey.{domain}")));
        records.push(r.body["dns"].clone());
    }
    let dup = t
        .api
        .post("/v1/domains", &json!({"domain": "sender.test"}))
        .await;
    assert_eq!((dup.status, dup.code()), (409, "conflict"));
    assert_eq!(
        t.api.get("/v1/domains").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    for from in ["app@sender.test", "app@ed.sender2.test"] {
        let r = t
            .api
            .post("/v1/messages", &json!({"from": from, "to": "ok@example.test", "subject": "signed", "text": "héllo\n\n\n", "html": "<p>hi</p>"}))
            .await;
        assert_eq!(r.status, 202);
    }
    let msgs = wait_until("both messages", DEADLINE, || async {
        let m = mx.messages();
        (m.len() == 2).then_some(m)
    })
    .await;
    for (i, m) in msgs.iter().enumerate() {
        let rec = if m.contains("d=sender.test") {
            &records[0]
        } else {
            &records[1]
        };
        assert!(m.contains("DKIM-Signature:"), "message {i} is not signed");
        assert!(
            dkimpy_verifies(
                m,
                rec["name"].as_str().unwrap(),
                rec["value"].as_str().unwrap()
            ),
            "dkimpy does not verify message {i}"
        );
        // Change the body itself: the first "hi" of the whole message can
        // be in the test MX's envelope lines (a VERP token), which are not
        // signed and are dropped before verifying.
        let at = m
            .rfind("<p>hi</p>")
            .expect("the HTML part is in the message as written");
        let tampered = format!("{}<p>ho</p>{}", &m[..at], &m[at + "<p>hi</p>".len()..]);
        assert!(!dkimpy_verifies(
            &tampered,
            rec["name"].as_str().unwrap(),
            rec["value"].as_str().unwrap()
        ));
    }
    assert_eq!(t.api.delete("/v1/domains/sender.test").await.status, 204);
    assert_eq!(t.api.get("/v1/domains/sender.test").await.status, 404);
    t.stop().await;
}
