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

/// The methods a route can be asked with; `HEAD` is answered wherever
/// `GET` is, so it is only checked where it is documented.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every route the router serves is in the document, with each method it
/// answers and no other: the route list is the router's own (the table
/// `tidings_web::api()` builds both from), and each route is asked on the
/// running server.
#[tokio::test]
async fn openapi_document_lists_every_route() {
    let t = InProcess::start(|_| {}).await;
    let served = reqwest::get(format!("{}/openapi.json", t.api.base))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let table = tidings_web::api().into_openapi();
    assert_eq!(
        served,
        serde_json::to_value(&table).unwrap(),
        "/openapi.json is the document of the route table"
    );

    let mut operations = 0;
    for (path, item) in &table.paths.paths {
        let item = serde_json::to_value(item).unwrap();
        let url = format!("{}{}", t.api.base, path.replace('{', "x").replace('}', ""));
        for method in METHODS.iter().chain(&["HEAD"]) {
            let documented = item.get(method.to_ascii_lowercase()).is_some();
            if *method == "HEAD" && !documented {
                continue;
            }
            let r = t
                .api
                .http
                .request(method.parse().unwrap(), &url)
                .bearer_auth(&t.api.key)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            if documented {
                operations += 1;
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                assert!(
                    !body.contains(tidings_web::error::NO_ROUTE),
                    "{method} {path} is documented but falls through to no route"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
            }
        }
    }
    assert!(operations > 0);
    for p in [
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/inbound",
        "/v1/suppressions",
        "/v1/suppressions/{email}",
        "/v1/domains",
        "/v1/domains/{domain}",
    ] {
        assert!(served["paths"].get(p).is_some(), "{p} is served");
    }

    let unknown = t.api.get("/v1/nothing-here").await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    assert_eq!(
        unknown.body["error"]["message"],
        tidings_web::error::NO_ROUTE
    );
    t.stop().await;
}

/// What the document says about the parts a client needs: keys, bodies
/// (JSON and raw MIME), cursors, path parameters and the error shape.
#[tokio::test]
async fn openapi_document_describes_bodies_params_and_errors() {
    let doc = serde_json::to_value(tidings_web::openapi::document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let resolve = |v: &serde_json::Value| -> serde_json::Value {
        match v["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => v.clone(),
        }
    };
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": "An API key of the account (`tk_…`)"})
    );
    let error = &schemas["Error"];
    assert_eq!(error["required"], json!(["error"]));
    let detail = resolve(&error["properties"]["error"]);
    assert_eq!(detail["required"], json!(["code", "message"]));

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let keyed = path.starts_with("/v1/");
            assert_eq!(
                op.get("security").is_some(),
                keyed,
                "{method} {path}: a key exactly on /v1"
            );
            if keyed {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
            if path.contains('{') {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter"
                );
            }
            let json_body = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            for code in ["400", "413", "415", "422"] {
                if json_body {
                    assert!(responses.contains_key(code), "{method} {path}: {code}");
                }
            }
            for (code, r) in responses {
                if code.starts_with('4') && path.starts_with("/v1/") {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {code} is an Error"
                    );
                }
            }
        }
    }

    let send = &doc["paths"]["/v1/messages"]["post"]["requestBody"]["content"];
    assert!(send.get("message/rfc822").is_some(), "raw MIME send");
    let send_json = resolve(&send["application/json"]["schema"]);
    let track = resolve(&send_json["properties"]["track"]);
    let track = match track["oneOf"].as_array() {
        Some(items) => resolve(items.iter().find(|i| i["type"] != "null").unwrap()),
        None => track,
    };
    assert!(track["properties"].get("opens").is_some(), "{track}");
    assert!(track["properties"].get("clicks").is_some(), "{track}");
    let inbound = &doc["paths"]["/v1/inbound"]["post"]["requestBody"]["content"];
    assert!(inbound.get("message/rfc822").is_some(), "raw MIME inbound");

    let patch = resolve(
        &doc["paths"]["/v1/webhooks/{id}"]["patch"]["requestBody"]["content"]["application/json"]
            ["schema"],
    );
    for field in ["url", "event_types", "format", "fields", "headers", "batch"] {
        assert!(
            patch["properties"].get(field).is_some(),
            "PATCH /v1/webhooks/{{id}} takes {field}: {patch}"
        );
    }

    let params = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(params("/v1/events").contains(&"after".to_string()));
    assert!(params("/v1/suppressions").contains(&"after".to_string()));
    assert!(params("/v1/attempts").contains(&"before".to_string()));
    assert!(params("/v1/attempts").contains(&"limit".to_string()));
}

/// Bodies of the wrong kind get the API's errors, not a guess: a JSON
/// array is not read as an object's fields in order, `null` where options
/// are optional means none, a raw report must be a message, and a path
/// that cannot be decoded names nothing.
#[tokio::test]
async fn bodies_and_paths_of_the_wrong_kind_are_refused() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let hook = t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    let id = hook["id"].as_str().unwrap();
    let json_ct = "application/json";

    let array = t
        .api
        .raw(
            reqwest::Method::PATCH,
            "/v1/tracking",
            json_ct,
            b"[false, false]".to_vec(),
        )
        .await;
    assert_eq!(
        (array.status, array.code()),
        (422, "invalid_request"),
        "{:?}",
        array.body
    );
    assert_eq!(
        t.api.get("/v1/tracking").await.body["opens"],
        true,
        "nothing changed"
    );
    let scalar = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/suppressions",
            json_ct,
            b"\"a@example.com\"".to_vec(),
        )
        .await;
    assert_eq!((scalar.status, scalar.code()), (422, "invalid_request"));
    let broken = t
        .api
        .raw(
            reqwest::Method::POST,
            "/v1/suppressions",
            json_ct,
            b"[1,".to_vec(),
        )
        .await;
    assert_eq!((broken.status, broken.code()), (400, "invalid_json"));

    for action in ["resume", "rotate-secret"] {
        let r = t
            .api
            .raw(
                reqwest::Method::POST,
                &format!("/v1/webhooks/{id}/{action}"),
                json_ct,
                b"null".to_vec(),
            )
            .await;
        assert_eq!(r.status, 200, "{action} with null: {:?}", r.body);
    }

    for junk in [&b"[null, null]"[..], b"{}", b"hello", b": no name\r\n\r\n"] {
        let r = t.api.post_raw("/v1/inbound", junk).await;
        assert_eq!((r.status, r.code()), (422, "invalid_message"), "{junk:?}");
    }

    let r = t.api.get("/v1/webhooks/%FF%FE").await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{:?}", r.body);
    let r = t.api.get("/v1/suppressions/%C3%28").await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{:?}", r.body);
    t.stop().await;
}
