//! The accept path over HTTP: messages in, per-recipient status out, the
//! suppression list, and `dropped` events for suppressed recipients.

use serde_json::json;
use tidings_testkit::{InProcess, Receiver, DEADLINE};

#[tokio::test]
async fn json_send_is_accepted_and_readable() {
    let t = InProcess::start(|_| {}).await;
    t.api.add_domain("example.com").await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({
                "from": "Shop <shop@example.com>",
                "to": ["A <a@example.org>", {"email": "B@Example.org", "name": "Bee"}],
                "bcc": "audit@example.net",
                "subject": "Your receipt",
                "text": "Thanks!",
                "html": "<p>Thanks!</p>",
                "custom_id": "order-7",
                "tags": ["receipts"],
                "attachments": [{"filename": "r.txt", "content": "aGVsbG8="}],
            }),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"));
    assert_eq!(
        r.body["recipients"],
        json!([
            {"email": "a@example.org", "status": "queued"},
            {"email": "b@example.org", "status": "queued"},
            {"email": "audit@example.net", "status": "queued"},
        ])
    );
    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(m.status, 200);
    assert_eq!(m.body["custom_id"], "order-7");
    assert_eq!(m.body["subject"], "Your receipt");
    assert_eq!(m.body["recipients"].as_array().unwrap().len(), 3);
    // In the configured host name, not the OS's.
    let smtp_id = m.body["smtp_message_id"].as_str().unwrap();
    assert!(
        smtp_id.starts_with('<') && smtp_id.ends_with("@tidings.test>"),
        "{smtp_id}"
    );
    t.stop().await;
}

#[tokio::test]
async fn suppressed_recipients_are_dropped_with_an_event() {
    let t = InProcess::start(|_| {}).await;
    t.api.add_domain("example.com").await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["dropped"]}))
        .await;
    let s = t
        .api
        .post(
            "/v1/suppressions",
            &json!({"email": "Gone@Example.org", "reason": "manual"}),
        )
        .await;
    assert_eq!(s.status, 201, "{:?}", s.body);
    assert_eq!(s.body["email"], "gone@example.org");
    let raw = "From: app@example.com\r\nTo: gone@example.org, ok@example.org\r\nBcc: hidden@example.org\r\nSubject: Hi\r\nX-Tidings-Custom-ID: c-1\r\nX-Tidings-Tags: a, b\r\n\r\nbody\r\n";
    let r = t.api.post_raw("/v1/messages", raw).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["recipients"],
        json!([
            {"email": "gone@example.org", "status": "dropped"},
            {"email": "ok@example.org", "status": "queued"},
            {"email": "hidden@example.org", "status": "queued"},
        ])
    );
    let got = rx.wait_for(1, DEADLINE).await;
    let ev = got[0].json();
    assert_eq!(ev["type"], "dropped");
    assert_eq!(ev["data"]["email"], "gone@example.org");
    assert_eq!(ev["data"]["reason"], "suppressed");
    assert_eq!(ev["data"]["message_id"], id);
    assert_eq!(ev["data"]["custom_id"], "c-1");
    assert_eq!(ev["data"]["tags"], json!(["a", "b"]));
    assert_eq!(ev["data"]["subject"], "Hi");

    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(m.body["events"][0]["type"], "dropped");
    assert_eq!(m.body["recipients"][0]["status"], "dropped");

    // The suppression list API.
    assert_eq!(
        t.api.get("/v1/suppressions/gone@example.org").await.status,
        200
    );
    let listed = t.api.get("/v1/suppressions").await;
    assert!(listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["email"] == "gone@example.org"));
    assert_eq!(
        t.api
            .delete("/v1/suppressions/GONE@example.org")
            .await
            .status,
        204
    );
    assert_eq!(
        t.api.get("/v1/suppressions/gone@example.org").await.status,
        404
    );
    assert_eq!(
        t.api
            .delete("/v1/suppressions/gone@example.org")
            .await
            .status,
        404
    );
    t.stop().await;
}

#[tokio::test]
async fn bad_messages_are_refused_and_nothing_is_stored() {
    let t = InProcess::start(|_| {}).await;
    t.api.add_domain("example.com").await;
    let base = json!({"from": "a@example.com", "to": "b@example.org", "subject": "s", "text": "t"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@example.org")).collect();
    let cases = vec![
        (with("to", json!("not-an-address")), 422, "invalid_address"),
        (
            with("from", json!("a@@example.com")),
            422,
            "invalid_address",
        ),
        (with("to", json!(many)), 422, "too_many_recipients"),
        (with("to", json!([])), 422, "invalid_message"),
        (with("colour", json!("red")), 422, "unknown_field"),
        (
            with("subject", json!("two\r\nlines")),
            422,
            "invalid_message",
        ),
        (
            with("attachments", json!([{"filename": "x", "content": "%%%"}])),
            422,
            "invalid_message",
        ),
        (
            json!({"from": "a@example.com", "to": "b@example.org", "subject": "s"}),
            422,
            "invalid_message",
        ),
    ];
    for (body, status, code) in cases {
        let r = t.api.post("/v1/messages", &body).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{body} → {:?}",
            r.body
        );
    }
    let raw_cases: Vec<(&[u8], &str)> = vec![
        (b"To: b@example.org\r\n\r\nno from\r\n", "invalid_message"),
        (
            b"From: a@example.com\r\nthis is not a header\r\n\r\nx",
            "invalid_message",
        ),
        (
            b"From: a@example.com\r\nSubject: nobody\r\n\r\nx",
            "invalid_message",
        ),
    ];
    for (raw, code) in raw_cases {
        let r = t.api.post_raw("/v1/messages", raw).await;
        assert_eq!((r.status, r.code()), (422, code), "{:?}", r.body);
    }
    let r = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/messages",
            "application/json",
            b"{\"from\":".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = t
        .api
        .post("/v1/suppressions", &json!({"email": "nope"}))
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_address"));
    assert_eq!(t.api.get("/v1/events").await.body["data"], json!([]));
    t.stop().await;
}
