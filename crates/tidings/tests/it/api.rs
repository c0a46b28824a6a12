//! The JSON API: shapes, errors with stable codes, isolation of accounts.

use serde_json::json;
use tidings_testkit::{Api, InProcess, Receiver};

async fn second_account(t: &InProcess) -> Api {
    let acc = t.app().create_account("other", None).await.unwrap();
    let key = t.app().create_api_key(acc.id, "k").await.unwrap();
    t.api.with_key(key.key.expose())
}

#[tokio::test]
async fn webhook_crud_round_trip() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let created = t
        .api
        .create_webhook(json!({
            "url": rx.url("/hook"),
            "event_types": ["bounce", "sent"],
            "fields": ["email", "status"],
            "headers": {"X-Token": "abc"},
            "description": "crm",
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("wh_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["event_types"], json!(["sent", "bounce"]));

    let got = t.api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none(), "the secret is not listed");
    assert_eq!(got.body["headers"]["X-Token"], "abc");

    let patched = t
        .api
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"format": "form", "fields": null}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["format"], "form");
    assert!(patched.body["fields"].is_null());

    let list = t.api.get("/v1/webhooks").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    let secret = t.api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(secret.body["secret"], created["secret"]);

    assert_eq!(
        t.api.delete(&format!("/v1/webhooks/{id}")).await.status,
        204
    );
    assert_eq!(t.api.get(&format!("/v1/webhooks/{id}")).await.status, 404);
    t.stop().await;
}

#[tokio::test]
async fn bad_input_gets_stable_codes_and_stores_nothing() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let url = rx.url("/h");
    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({"url": url, "colour": "red"}), 422, "unknown_field"),
        (
            json!({"url": url, "event_types": ["opened"]}),
            422,
            "invalid_event_type",
        ),
        (
            json!({"url": url, "event_types": []}),
            422,
            "invalid_event_type",
        ),
        (
            json!({"url": url, "fields": ["email", "shoe_size"]}),
            422,
            "unknown_field",
        ),
        (json!({"url": "not a url"}), 422, "invalid_url"),
        (json!({"url": "ftp://example.com/x"}), 422, "invalid_url"),
        (
            json!({"url": "http://user:pw@example.com/x"}),
            422,
            "invalid_url",
        ),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            422,
            "blocked_url",
        ),
        (json!({"url": "http://10.1.2.3/hook"}), 422, "blocked_url"),
        (json!({"url": "http://[fd00::1]/hook"}), 422, "blocked_url"),
        (
            json!({"url": url, "headers": {"webhook-signature": "x"}}),
            422,
            "invalid_request",
        ),
        (
            json!({"url": url, "format": "form", "batch": {"max_events": 5}}),
            422,
            "invalid_request",
        ),
        (
            json!({"url": url, "max_in_flight": 0}),
            422,
            "invalid_request",
        ),
        (
            json!({"url": url, "secret": "whsec_short"}),
            422,
            "invalid_request",
        ),
        (json!({"event_types": ["sent"]}), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = t.api.post("/v1/webhooks", &body).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{body} → {:?}",
            r.body
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    let malformed = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/webhooks",
            "application/json",
            b"{\"url\": ".to_vec(),
        )
        .await;
    assert_eq!((malformed.status, malformed.code()), (400, "invalid_json"));

    let wrong_type = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/webhooks",
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        (wrong_type.status, wrong_type.code()),
        (415, "unsupported_media_type")
    );

    let huge = format!(
        "{{\"url\": \"{url}\", \"description\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let big = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/webhooks",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_eq!((big.status, big.code()), (413, "payload_too_large"));

    assert_eq!(
        t.api.get("/v1/webhooks").await.body["data"],
        json!([]),
        "nothing stored by refused requests"
    );
    t.stop().await;
}

/// A destination refused by the operator's policy names the setting that
/// allows it, so the account knows whom to ask and what for.
#[tokio::test]
async fn blocked_urls_name_the_setting_that_allows_them() {
    let t = InProcess::start(|c| c.webhooks.allow_loopback = false).await;
    let cases = [
        (
            "http://127.0.0.1:8080/hook",
            Some("webhooks.allow_loopback"),
        ),
        ("http://localhost/hook", Some("webhooks.allow_loopback")),
        ("http://[::1]/hook", Some("webhooks.allow_loopback")),
        ("http://10.1.2.3/hook", Some("webhooks.allow_private")),
        ("http://192.168.0.10/hook", Some("webhooks.allow_private")),
        ("http://169.254.10.1/hook", Some("webhooks.allow_private")),
        ("http://[fe80::1]/hook", Some("webhooks.allow_private")),
        ("http://169.254.169.254/latest/meta-data", None),
    ];
    for (url, setting) in cases {
        let r = t.api.post("/v1/webhooks", &json!({"url": url})).await;
        assert_eq!((r.status, r.code()), (422, "blocked_url"), "{url}");
        let message = r.body["error"]["message"].as_str().unwrap();
        match setting {
            Some(s) => assert!(
                message.contains(&format!("`{s} = true`")),
                "{url}: {message}"
            ),
            None => assert!(
                !message.contains("allow_") && message.contains("no setting allows it"),
                "{url}: {message}"
            ),
        }
    }
    // The same on a change of URL.
    let rx = Receiver::start().await;
    let allowed = InProcess::start(|_| {}).await;
    let id = allowed
        .api
        .create_webhook(json!({"url": rx.url("/h")}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = allowed
        .api
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"url": "http://10.0.0.1/h"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "blocked_url"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("webhooks.allow_private"));
    allowed.stop().await;
    t.stop().await;
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let t = InProcess::start(|_| {}).await;
    let no_key = t
        .api
        .http
        .get(format!("{}/v1/webhooks", t.api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let body: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for bad in [
        "tk_wrong",
        "",
        "Basic abc",
        "tk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = t.api.with_key(bad).get("/v1/webhooks").await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "key {bad:?}");
    }
    let r = t.api.with_key("tk_wrong").get("/v1/events").await;
    assert_eq!(r.status, 401);
    t.stop().await;
}

#[tokio::test]
async fn accounts_never_see_each_other() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let other = second_account(&t).await;
    let mine = t.api.create_webhook(json!({"url": rx.url("/a")})).await;
    let id = mine["id"].as_str().unwrap();
    crate::record(&t, tidings_types::EventType::Sent, "a@example.com").await;

    for path in [
        format!("/v1/webhooks/{id}"),
        format!("/v1/webhooks/{id}/status"),
        format!("/v1/webhooks/{id}/secret"),
        format!("/v1/webhooks/{id}/attempts"),
    ] {
        let r = other.get(&path).await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
    }
    assert_eq!(
        other.delete(&format!("/v1/webhooks/{id}")).await.status,
        404
    );
    let r = other
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"description": "mine now"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = other
        .post(&format!("/v1/webhooks/{id}/test"), &json!({"type": "sent"}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(other.get("/v1/webhooks").await.body["data"], json!([]));
    assert_eq!(other.get("/v1/events").await.body["data"], json!([]));
    assert_eq!(other.get("/v1/attempts").await.body["data"], json!([]));
    // Still intact for its owner.
    assert_eq!(
        t.api.get(&format!("/v1/webhooks/{id}")).await.body["description"],
        json!(null)
    );
    assert_eq!(
        t.api.get("/v1/events").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    t.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let t = InProcess::start(|_| {}).await;
    let doc = reqwest::get(format!("{}/openapi.json", t.api.base))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/status",
        "/v1/webhooks/{id}/resume",
        "/v1/webhooks/{id}/test",
        "/v1/webhooks/{id}/replay",
        "/v1/webhooks/{id}/secret",
        "/v1/webhooks/{id}/rotate-secret",
        "/v1/webhooks/{id}/attempts",
        "/v1/attempts",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/tracking",
        "/healthz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from /openapi.json"
        );
    }
    let unknown = t.api.get("/v1/nothing-here").await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    t.stop().await;
}
