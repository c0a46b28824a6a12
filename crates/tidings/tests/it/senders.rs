//! Who may send as whom: mail is accepted only from a domain the account
//! added with `POST /v1/domains` (or a subdomain of one), over HTTP and
//! SMTP alike, unless the operator allows any sender.

use serde_json::json;
use tidings_testkit::InProcess;

fn message(from: &str) -> serde_json::Value {
    json!({"from": from, "to": "r@example.org", "subject": "s", "text": "t"})
}

#[tokio::test]
async fn a_sender_domain_the_account_has_not_added_is_refused() {
    let t = InProcess::start(|_| {}).await;
    let r = t
        .api
        .post("/v1/messages", &message("App <app@shop.test>"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "unknown_sender_domain"),
        "{:?}",
        r.body
    );
    let text = r.body["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("`shop.test`") && text.contains("POST /v1/domains"),
        "{text}"
    );
    let raw = b"From: app@shop.test\r\nTo: r@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    let r = t.api.post_raw("/v1/messages", raw).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "unknown_sender_domain"),
        "{:?}",
        r.body
    );

    // Another account's domain is no help, and is not this one's to add
    // until the other lets it go.
    let other = t.app().create_account("other", None).await.unwrap();
    let key = t.app().create_api_key(other.id, "k").await.unwrap();
    let other = t.api.with_key(key.key.expose());
    other.add_domain("shop.test").await;
    let r = t.api.post("/v1/messages", &message("app@shop.test")).await;
    assert_eq!(r.code(), "unknown_sender_domain");
    let r = t
        .api
        .post("/v1/domains", &json!({"domain": "shop.test"}))
        .await;
    assert_eq!(r.code(), "conflict", "{:?}", r.body);
    assert_eq!(other.delete("/v1/domains/shop.test").await.status, 204);

    // Once added, the domain and its subdomains send; a look-alike does not.
    t.api.add_domain("Shop.Test").await;
    for from in ["app@shop.test", "APP@SHOP.TEST", "news@mail.shop.test"] {
        let r = t.api.post("/v1/messages", &message(from)).await;
        assert_eq!(r.status, 202, "{from}: {:?}", r.body);
    }
    for from in ["app@evilshop.test", "app@shop.test.evil"] {
        let r = t.api.post("/v1/messages", &message(from)).await;
        assert_eq!(r.code(), "unknown_sender_domain", "{from}");
    }
    // And removed, it no longer does.
    assert_eq!(t.api.delete("/v1/domains/shop.test").await.status, 204);
    let r = t.api.post("/v1/messages", &message("app@shop.test")).await;
    assert_eq!(r.code(), "unknown_sender_domain");
    t.stop().await;
}

#[tokio::test]
async fn refused_senders_store_nothing() {
    let t = InProcess::start(|_| {}).await;
    let rx = tidings_testkit::Receiver::start().await;
    t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    // A suppressed recipient would be a `dropped` event if the message
    // were accepted.
    t.api
        .post("/v1/suppressions", &json!({"email": "r@example.org"}))
        .await;
    let r = t.api.post("/v1/messages", &message("app@shop.test")).await;
    assert_eq!(r.code(), "unknown_sender_domain");
    assert_eq!(t.api.get("/v1/events").await.body["data"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn the_operator_can_allow_any_sender() {
    let t = InProcess::start(|c| c.sending.allow_any_sender = true).await;
    let r = t
        .api
        .post("/v1/messages", &message("app@anything.test"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    t.stop().await;
}

/// Over SMTP submission the refusal is a `550 5.7.1` after DATA that names
/// the domain; the same session can then send from a domain it added.
#[tokio::test]
async fn smtp_submission_refuses_an_unknown_sender_domain_with_550() {
    let t = InProcess::start(|_| {}).await;
    t.api.add_domain("sender.test").await;
    let smtp = t.running.as_ref().unwrap().smtp_addr.unwrap();
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port})
s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.login("apikey", "{key}")
try:
    s.sendmail("app@shop.test", ["r@example.org"], "From: app@shop.test\r\nTo: r@example.org\r\nSubject: s\r\n\r\nhi\r\n")
    raise SystemExit("an unknown sender domain was accepted")
except smtplib.SMTPDataError as e:
    text = e.smtp_error.decode()
    assert e.smtp_code == 550 and text.startswith("5.7.1") and "`shop.test`" in text, (e.smtp_code, text)
s.rset()
refused = s.sendmail("app@sender.test", ["r@example.org"], "From: app@sender.test\r\nTo: r@example.org\r\nSubject: s\r\n\r\nhi\r\n")
assert refused == {{}}, refused
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
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t.stop().await;
}
