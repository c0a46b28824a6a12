//! `Idempotency-Key`: a client that retries a request it cannot know the
//! fate of gets the first answer, and one message goes out, even when the
//! retries race each other or the server was killed in between.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, Api, Binary, DEADLINE};

/// POST `body` to `path` with `key`: status, `Idempotent-Replayed`, body.
async fn post_with_key(api: &Api, path: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(&api.key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, r.json().await.unwrap())
}

fn message(subject: &str) -> Value {
    json!({"from": "shop@example.com", "to": ["a@example.test", "b@example.test"],
        "subject": subject, "text": "hi"})
}

#[tokio::test]
async fn a_retried_send_answers_the_first_and_sends_once() {
    let mx = Mx::start();
    let t = mx.app(|_| {}).await;
    t.api.add_domain("example.com").await;
    let api = &t.api;
    let (s1, r1, first) = post_with_key(api, "/v1/messages", "order-42", &message("receipt")).await;
    assert_eq!((s1, r1), (202, false), "{first}");
    let (s2, r2, again) = post_with_key(api, "/v1/messages", "order-42", &message("receipt")).await;
    assert_eq!((s2, r2), (202, true), "{again}");
    assert_eq!(again, first, "the first answer, again");

    // Another request under the same key is refused, and sends nothing.
    let (s3, _, other) = post_with_key(api, "/v1/messages", "order-42", &message("other")).await;
    assert_eq!(
        (s3, other["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{other}"
    );
    let (s4, _, bad) = post_with_key(api, "/v1/messages", "with space", &message("x")).await;
    assert_eq!(
        (s4, bad["error"]["code"].as_str()),
        (422, Some("invalid_idempotency_key"))
    );

    // Racing retries: one message, one answer.
    let race = message("race");
    let answers = futures::future::join_all(
        (0..8).map(|_| post_with_key(api, "/v1/messages", "order-43", &race)),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, _, b)| {
            assert_eq!(*s, 202, "{b}");
            b["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );

    // A last message without a key was queued after them all: once it and
    // both deliveries (a@, b@) of each keyed message have arrived, a
    // duplicate would have too. One message per key.
    let r = api
        .post(
            "/v1/messages",
            &json!({"from": "shop@example.com",
        "to": "last@example.test", "subject": "last", "text": "x"}),
        )
        .await;
    assert_eq!(r.status, 202);
    let with_subject = |msgs: &[String], s: &str| -> Vec<String> {
        msgs.iter()
            .filter(|m| m.contains(&format!("Subject: {s}\r\n")))
            .map(|m| {
                m.lines()
                    .find(|l| l.starts_with("Message-ID:"))
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let msgs = wait_until("every delivery", DEADLINE, || {
        let m = mx.messages();
        let done = with_subject(&m, "last").len() == 1
            && with_subject(&m, "receipt").len() >= 2
            && with_subject(&m, "race").len() >= 2;
        async move { done.then_some(m) }
    })
    .await;
    for subject in ["receipt", "race"] {
        let ids = with_subject(&msgs, subject);
        assert_eq!(ids.len(), 2, "{subject}: {ids:?}");
        assert_eq!(ids[0], ids[1], "{subject}: one message");
    }
    assert!(with_subject(&msgs, "other").is_empty());
    t.stop().await;
}

#[tokio::test]
async fn a_retried_webhook_creation_makes_one_webhook() {
    let t = tidings_testkit::InProcess::start(|_| {}).await;
    let body = json!({"url": "https://hooks.example.com/a", "event_types": ["bounce"]});
    let (s1, r1, first) = post_with_key(&t.api, "/v1/webhooks", "hook-1", &body).await;
    assert_eq!((s1, r1), (201, false), "{first}");
    let (s2, r2, again) = post_with_key(&t.api, "/v1/webhooks", "hook-1", &body).await;
    assert_eq!((s2, r2), (201, true), "{again}");
    assert_eq!(
        (again["id"].clone(), again["secret"].clone()),
        (first["id"].clone(), first["secret"].clone())
    );
    let list = t.api.get("/v1/webhooks").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "{:?}",
        list.body
    );
    // The key of a message is not the key of a webhook.
    let (s3, _, other) = post_with_key(&t.api, "/v1/messages", "hook-1", &message("x")).await;
    assert_eq!(
        (s3, other["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    t.stop().await;
}

#[tokio::test]
async fn the_key_outlives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut bin = Binary::start(env!("CARGO_BIN_EXE_tidings"), dir.path(), &[]);
    bin.api().add_domain("example.com").await;
    let (s, _, first) = post_with_key(&bin.api(), "/v1/messages", "k-9", &message("once")).await;
    assert_eq!(s, 202, "{first}");
    bin.kill9();
    bin.restart();
    let (s, replayed, again) =
        post_with_key(&bin.api(), "/v1/messages", "k-9", &message("once")).await;
    assert_eq!((s, replayed), (202, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    bin.kill9();
}
