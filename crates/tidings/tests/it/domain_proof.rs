//! A domain is proven by DNS before tidings uses it for an account other
//! than the operator's: a sending domain by its DKIM record, a tracking
//! domain by its `_tidings` TXT record. The records are served by a real
//! DNS server on loopback, published while tidings runs, as an owner would.

use serde_json::{json, Value};
use tidings_testkit::{Api, InProcess};

fn message(from: &str) -> Value {
    json!({"from": from, "to": "r@example.org", "subject": "s", "text": "t"})
}

/// A second account (the first, made at start, is the operator's).
async fn tenant(t: &InProcess) -> Api {
    let acc = t.app().create_account("tenant", None).await.unwrap();
    let key = t.app().create_api_key(acc.id, "k").await.unwrap();
    t.api.with_key(key.key.expose())
}

#[tokio::test]
async fn a_tenants_sending_domain_is_used_only_once_its_dkim_record_is_found() {
    let t = InProcess::start(|_| {}).await;
    let b = tenant(&t).await;
    let added = b.add_domain("shop.test").await;
    assert_eq!(
        (&added["status"], &added["usable"], &added["verified_at"]),
        (&json!("pending"), &json!(false), &Value::Null),
        "{added}"
    );
    let record = added["dns"].clone();
    assert_eq!(
        record["name"],
        json!(format!(
            "{}._domainkey.shop.test",
            added["selector"].as_str().unwrap()
        ))
    );

    // Claimed, not proven: mail from it is refused and nothing is stored.
    let r = b.post("/v1/messages", &message("app@shop.test")).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "domain_unverified"),
        "{:?}",
        r.body
    );
    let text = r.body["error"]["message"].as_str().unwrap();
    assert!(text.contains("verify"), "{text}");
    assert_eq!(b.get("/v1/events").await.body["data"], json!([]));

    // Nothing published yet.
    let r = b.post("/v1/domains/shop.test/verify", &json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (&r.body["result"], &r.body["status"]),
        (&json!("record_missing"), &json!("pending")),
        "{:?}",
        r.body
    );
    // Someone else's key at the name proves nothing.
    let name = record["name"].as_str().unwrap();
    t.dns.publish_txt(
        name,
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    );
    let r = b.post("/v1/domains/shop.test/verify", &json!({})).await;
    assert_eq!(r.body["result"], json!("record_mismatch"), "{:?}", r.body);
    let r = b.post("/v1/messages", &message("app@shop.test")).await;
    assert_eq!(r.code(), "domain_unverified");

    // The record tidings showed, published: verified, and mail flows.
    t.dns.publish_txt(name, record["value"].as_str().unwrap());
    let r = b.post("/v1/domains/shop.test/verify", &json!({})).await;
    assert_eq!(
        (&r.body["result"], &r.body["status"]),
        (&json!("verified"), &json!("verified")),
        "{:?}",
        r.body
    );
    assert!(r.body["verified_at"].is_string(), "{:?}", r.body);
    let listed = b.get("/v1/domains/shop.test").await.body;
    assert_eq!(
        (&listed["status"], &listed["usable"]),
        (&json!("verified"), &json!(true))
    );
    for from in ["app@shop.test", "news@mail.shop.test"] {
        let r = b.post("/v1/messages", &message(from)).await;
        assert_eq!(r.status, 202, "{from}: {:?}", r.body);
    }
    // Another account still cannot claim it.
    let r = t
        .api
        .post("/v1/domains", &json!({"domain": "shop.test"}))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    // A domain the account does not have is not found.
    let r = b.post("/v1/domains/other.test/verify", &json!({})).await;
    assert_eq!(r.status, 404);
    t.stop().await;
}

/// The proof survives a restart: the verified domain is still usable.
#[tokio::test]
async fn a_verified_domain_stays_verified_after_a_restart() {
    let t = InProcess::start(|_| {}).await;
    let b = tenant(&t).await;
    let added = b.add_domain("kept.test").await;
    t.dns.publish_txt(
        added["dns"]["name"].as_str().unwrap(),
        added["dns"]["value"].as_str().unwrap(),
    );
    let r = b.post("/v1/domains/kept.test/verify", &json!({})).await;
    assert_eq!(r.body["status"], json!("verified"), "{:?}", r.body);
    let t = t.restart().await;
    let b = Api::new(t.running.as_ref().unwrap().addr, b.key.clone());
    let r = b.post("/v1/messages", &message("app@kept.test")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    // ...and a still-pending one still is not.
    b.add_domain("later.test").await;
    let r = b.post("/v1/messages", &message("app@later.test")).await;
    assert_eq!(r.code(), "domain_unverified");
    t.stop().await;
}

#[tokio::test]
async fn the_operators_own_domains_need_no_proof_unless_the_operator_asks() {
    let t = InProcess::start(|_| {}).await;
    let d = t.api.add_domain("own.test").await;
    assert_eq!(
        (&d["status"], &d["usable"]),
        (&json!("pending"), &json!(true))
    );
    let r = t.api.post("/v1/messages", &message("app@own.test")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    t.stop().await;

    let t = InProcess::start(|c| {
        c.domains.proof = tidings_core::domain_proof::ProofPolicy::All;
    })
    .await;
    t.api.add_domain("own.test").await;
    let r = t.api.post("/v1/messages", &message("app@own.test")).await;
    assert_eq!(r.code(), "domain_unverified");
    t.stop().await;

    let t = InProcess::start(|c| {
        c.domains.proof = tidings_core::domain_proof::ProofPolicy::None;
    })
    .await;
    let b = tenant(&t).await;
    let d = b.add_domain("trusting.test").await;
    assert_eq!(d["usable"], json!(true));
    let r = b.post("/v1/messages", &message("app@trusting.test")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    t.stop().await;
}

/// A tenant's tracking domain: until its TXT record is found, its links
/// are made on the global base URL and the host is not the account's (no
/// other account's tokens are turned away there); once found, both.
#[tokio::test]
async fn a_tenants_tracking_domain_is_used_only_once_its_record_is_found() {
    let t = InProcess::start(|_| {}).await;
    let global = t.api.get("/v1/tracking").await.body["base_url"].clone();
    let b = tenant(&t).await;
    let r = b
        .patch("/v1/tracking", &json!({"domain": "https://track.b.test"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (
            &r.body["domain"],
            &r.body["base_url"],
            &r.body["domain_status"]
        ),
        (&json!("https://track.b.test"), &global, &json!("pending")),
        "{:?}",
        r.body
    );
    let record = r.body["domain_record"].clone();
    assert_eq!(record["name"], json!("_tidings.track.b.test"));
    assert_eq!(record["type"], json!("TXT"));

    let r = b.post("/v1/tracking/verify", &json!({})).await;
    assert_eq!(r.body["result"], json!("record_missing"), "{:?}", r.body);
    // Another account's record for the same host proves nothing for this one.
    let other = tenant(&t).await;
    let theirs = other
        .patch("/v1/tracking", &json!({"domain": "https://other.b.test"}))
        .await
        .body["domain_record"]["value"]
        .clone();
    t.dns
        .publish_txt("_tidings.track.b.test", theirs.as_str().unwrap());
    let r = b.post("/v1/tracking/verify", &json!({})).await;
    assert_eq!(r.body["result"], json!("record_mismatch"), "{:?}", r.body);

    t.dns
        .publish_txt("_tidings.track.b.test", record["value"].as_str().unwrap());
    let r = b.post("/v1/tracking/verify", &json!({})).await;
    assert_eq!(
        (&r.body["result"], &r.body["status"]),
        (&json!("verified"), &json!("verified")),
        "{:?}",
        r.body
    );
    let now = b.get("/v1/tracking").await.body;
    assert_eq!(
        (&now["base_url"], &now["domain_status"]),
        (&json!("https://track.b.test"), &json!("verified")),
        "{now}"
    );
    // A new host has to be proven anew.
    let r = b
        .patch("/v1/tracking", &json!({"domain": "https://t2.b.test"}))
        .await;
    assert_eq!(
        (&r.body["base_url"], &r.body["domain_status"]),
        (&global, &json!("pending"))
    );
    // Without a tracking domain there is nothing to verify.
    b.patch("/v1/tracking", &json!({"domain": null})).await;
    let r = b.post("/v1/tracking/verify", &json!({})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    t.stop().await;
}
