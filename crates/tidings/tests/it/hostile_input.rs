//! Hostile input on the send API, end to end: what an attacker puts in a
//! field never becomes a header, a body or a second address at the
//! recipient's MX (a real aiosmtpd), and what the MX refuses because of
//! the message itself does not suppress the address.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, Receiver, DEADLINE};

async fn with_mx() -> (InProcess, Mx) {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    t.api.add_domain("example.com").await;
    (t, mx)
}

fn base() -> Value {
    json!({"from": "shop@example.com", "to": "x@example.test", "subject": "original", "text": "original"})
}

fn with(field: &str, v: Value) -> Value {
    let mut b = base();
    b[field] = v;
    b
}

/// The head of a message as received, unfolded, one field per entry.
fn head_fields(msg: &str) -> Vec<String> {
    let head = msg.split("\r\n\r\n").next().unwrap();
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            out.last_mut().unwrap().push_str(line);
        } else {
            out.push(line.to_string());
        }
    }
    out
}

#[tokio::test]
async fn injected_fields_are_refused_and_only_the_honest_message_arrives() {
    let (t, mx) = with_mx().await;
    let injected = "r@example.com\r\nSubject: INJECTED\r\nContent-Type: text/html\r\n\r\n<h1>INJECTED BODY</h1>";
    let cases = [
        (
            with("reply_to", json!({"email": injected, "name": "R"})),
            "invalid_address",
        ),
        (
            with(
                "reply_to",
                json!("R <r@example.com>\r\nBcc: victim@example.org"),
            ),
            "invalid_address",
        ),
        (
            with(
                "from",
                json!({"email": "shop@example.com", "name": "S\r\nBcc: victim@example.org"}),
            ),
            "invalid_address",
        ),
        (
            with("cc", json!(["c@example.test\nX-Evil: 1"])),
            "invalid_address",
        ),
        (
            with("headers", json!({"From": "ceo@victim.example"})),
            "reserved_header",
        ),
        (
            with("headers", json!({"bcc": "victim@example.org"})),
            "reserved_header",
        ),
        (
            with("headers", json!({"X-Ok": "a\r\nBcc: victim@example.org"})),
            "invalid_header",
        ),
        (
            with("headers", json!({"X-Big": "v".repeat(100_000)})),
            "invalid_header",
        ),
        (
            with(
                "attachments",
                json!([{"filename": "a.txt", "content": "aGk=",
                "content_type": "text/plain\r\nBcc: injected@evil.example"}]),
            ),
            "invalid_message",
        ),
        (
            with("subject", json!("s\r\nBcc: victim@example.org")),
            "invalid_message",
        ),
        (with("custom_id", json!("c\r\nX: y")), "invalid_message"),
    ];
    for (body, code) in &cases {
        let r = t.api.post("/v1/messages", body).await;
        assert_eq!((r.status, r.code()), (422, *code), "{body}: {:?}", r.body);
        if *code == "reserved_header" {
            let name = body["headers"].as_object().unwrap().keys().next().unwrap();
            assert!(
                r.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(name.as_str()),
                "{:?}",
                r.body
            );
        }
    }
    // Then an honest message, with a long header value and a long body
    // line: it alone arrives, with every line within 998 octets.
    let long_value = "t".repeat(4000);
    let long_line = "word ".repeat(1000);
    let mut honest = base();
    honest["reply_to"] = json!({"email": "help@example.com", "name": "Help Désk"});
    honest["headers"] = json!({"X-Long": long_value});
    honest["text"] = json!(long_line);
    honest["attachments"] = json!([{"filename": "a.txt", "content": "aGk=", "content_type": "text/plain; charset=utf-8"}]);
    let r = t.api.post("/v1/messages", &honest).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let msgs = wait_until("the honest message at the MX", DEADLINE, || {
        let m = mx.messages();
        async move { (!m.is_empty()).then_some(m) }
    })
    .await;
    assert_eq!(msgs.len(), 1, "only the honest message was sent");
    let msg = &msgs[0];
    for line in msg.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    let fields = head_fields(msg);
    let count = |name: &str| {
        fields
            .iter()
            .filter(|f| {
                f.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .count()
    };
    for name in ["From", "To", "Subject", "Reply-To", "Message-ID", "X-Long"] {
        assert_eq!(count(name), 1, "{name} in {fields:?}");
    }
    assert_eq!(count("Bcc"), 0);
    assert!(!msg.contains("INJECTED"));
    let parsed = super::python(
        "import sys, email, email.policy\n\
         m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)\n\
         body = m.get_body(('plain',)).get_content()\n\
         print(len(str(m['X-Long'])), m['Reply-To'].addresses[0].display_name, m['Reply-To'].addresses[0].addr_spec, body.count('word'))",
        msg.as_bytes(),
    );
    assert!(parsed.1, "{parsed:?}");
    assert_eq!(parsed.0, "4000 Help Désk help@example.com 1000");
    t.stop().await;
}

#[tokio::test]
async fn loose_bodies_and_long_raw_lines_are_refused() {
    let t = InProcess::start(|_| {}).await;
    t.api.add_domain("example.com").await;
    let mut body = serde_json::to_vec(&base()).unwrap();
    body.extend_from_slice(b" xyz");
    let r = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/messages",
            "application/json",
            body,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"), "{:?}", r.body);
    let raw = format!(
        "From: shop@example.com\r\nTo: x@example.test\r\nSubject: s\r\n\r\nok\r\n{}\r\n",
        "y".repeat(1200)
    );
    let r = t.api.post_raw("/v1/messages", raw).await;
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_message"),
        "{:?}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 6"),
        "{:?}",
        r.body
    );
    // A domain that is not one is refused before any key is made.
    let r = t
        .api
        .post("/v1/domains", &json!({"domain": "not a domain"}))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_refusal_of_the_message_itself_does_not_suppress_the_address() {
    let (t, _mx) = with_mx().await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["bounce", "block"]}))
        .await;
    let r = t
        .api
        .post("/v1/messages", &with("to", json!("toolong@example.test")))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let events = rx.wait_for_json(1, DEADLINE).await;
    assert_eq!(events[0]["type"], "block", "{events:?}");
    assert_eq!(events[0]["data"]["reason"], "content");
    assert_eq!(events[0]["data"]["status"], "5.6.0");
    assert_eq!(events[0]["data"]["email"], "toolong@example.test");
    let s = t.api.get("/v1/suppressions/toolong@example.test").await;
    assert_eq!(s.status, 404, "not suppressed: {:?}", s.body);
    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(m.body["recipients"][0]["status"], "blocked");
    // The next message to the address is sent, not dropped.
    let r = t
        .api
        .post("/v1/messages", &with("to", json!("toolong@example.test")))
        .await;
    assert_eq!(r.body["recipients"][0]["status"], "queued", "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_webhook_host_is_resolved_when_it_is_saved() {
    // This machine's own name resolves to one of its own addresses
    // (loopback or private on any ordinary set-up): a name an attacker
    // could point anywhere, and that the default policy refuses.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .unwrap_or_else(|e| panic!("this machine's name {name} does not resolve: {e}"))
        .collect();
    assert!(
        resolved.iter().all(|a| a.ip().is_loopback()
            || match a.ip() {
                std::net::IpAddr::V4(v4) => v4.is_private(),
                std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
            }),
        "{name} resolves to {resolved:?}"
    );
    let t = InProcess::start(|c| c.webhooks.allow_loopback = false).await;
    let url = format!("http://{name}:9/hook");
    let r = t.api.post("/v1/webhooks", &json!({"url": url})).await;
    assert_eq!((r.status, r.code()), (422, "blocked_url"), "{:?}", r.body);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains(&name),
        "{:?}",
        r.body
    );
    // Nor can an existing webhook be moved there.
    let ok = t
        .api
        .post(
            "/v1/webhooks",
            &json!({"url": "https://hooks.example.com/a"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let id = ok.body["id"].as_str().unwrap();
    let r = t
        .api
        .patch(&format!("/v1/webhooks/{id}"), &json!({"url": url}))
        .await;
    assert_eq!((r.status, r.code()), (422, "blocked_url"), "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_domain_belongs_to_one_account() {
    let t = InProcess::start(|_| {}).await;
    let acc = t.app().create_account("other", None).await.unwrap();
    let key = t.app().create_api_key(acc.id, "k").await.unwrap();
    let b = t.api.with_key(key.key.expose());

    // A's tracking domain cannot be claimed by B.
    let r = t
        .api
        .patch("/v1/tracking", &json!({"domain": "http://a-track.example"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = b
        .patch(
            "/v1/tracking",
            &json!({"domain": "https://A-Track.example/"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{:?}", r.body);
    let r = b.get("/v1/tracking").await;
    assert!(
        r.body["domain"].is_null(),
        "B's settings are unchanged: {:?}",
        r.body
    );
    // A may set its own again; once A lets it go, B may take it.
    let r = t
        .api
        .patch(
            "/v1/tracking",
            &json!({"domain": "https://a-track.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    t.api.patch("/v1/tracking", &json!({"domain": null})).await;
    let r = b
        .patch(
            "/v1/tracking",
            &json!({"domain": "https://a-track.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A sending domain too.
    t.api.add_domain("shop.example").await;
    let r = b
        .post("/v1/domains", &json!({"domain": "Shop.Example"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{:?}", r.body);
    let r = b
        .post(
            "/v1/messages",
            &json!({"from": "ceo@shop.example", "to": "x@example.test", "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "unknown_sender_domain"),
        "{:?}",
        r.body
    );

    // And an address is no domain.
    for d in ["127.0.0.1", "10.1.2.3", "[::1]"] {
        let r = t.api.post("/v1/domains", &json!({"domain": d})).await;
        assert_eq!(r.status, 422, "{d}: {:?}", r.body);
    }
    for d in ["http://127.0.0.1", "http://[::1]:8080", "http://10.1"] {
        let r = t.api.patch("/v1/tracking", &json!({"domain": d})).await;
        assert_eq!(r.status, 422, "{d}: {:?}", r.body);
    }
    t.stop().await;
}
