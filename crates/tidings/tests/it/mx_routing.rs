//! Where outbound mail goes when no transport is configured: the
//! recipient domain's MX records, through a real DNS server on loopback,
//! and the address policy its mail hosts must pass.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{InProcess, Receiver, DEADLINE};

/// tidings resolving mail hosts from `zones` (its MX hosts listen where
/// `mx` does), sending from `sender.test`, with a receiver of its
/// delivery events.
async fn routed_by(
    zones: std::collections::HashMap<String, tidings_testkit::dns::Zone>,
    mx: &Mx,
    allow_loopback: bool,
) -> (tidings_testkit::dns::FakeDns, InProcess, Receiver) {
    let dns = tidings_testkit::dns::FakeDns::start(zones).await;
    let (dns_addr, port) = (dns.addr, mx.port);
    let t = InProcess::start(move |c| {
        c.outbound.nameservers = vec![dns_addr];
        c.outbound.mx_port = port;
        c.outbound.allow_loopback = allow_loopback;
    })
    .await;
    t.api.add_domain("sender.test").await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["sent", "bounce", "deferred"]}))
        .await;
    (dns, t, rx)
}

#[tokio::test]
async fn mx_records_are_found_through_real_dns() {
    use std::collections::HashMap;
    use tidings_testkit::dns::Zone;
    let mx = Mx::start();
    let localhost = "127.0.0.1".parse().unwrap();
    let zones = HashMap::from([
        (
            "mx.test".to_string(),
            Zone {
                mx: vec![(20, "backup.mx.test".into()), (10, "mail.mx.test".into())],
                a: vec![],
                ..Default::default()
            },
        ),
        (
            "mail.mx.test".to_string(),
            Zone {
                mx: vec![],
                a: vec![localhost],
                ..Default::default()
            },
        ),
        (
            "backup.mx.test".to_string(),
            Zone {
                mx: vec![],
                a: vec![],
                ..Default::default()
            },
        ),
        (
            "amx.test".to_string(),
            Zone {
                mx: vec![],
                a: vec![localhost],
                ..Default::default()
            },
        ),
        (
            "nullmx.test".to_string(),
            Zone {
                mx: vec![(0, ".".into())],
                a: vec![],
                ..Default::default()
            },
        ),
    ]);
    // The test's mail hosts are all on this machine.
    let (_dns, t, rx) = routed_by(zones, &mx, true).await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({
                "from": "app@sender.test", "subject": "dns", "text": "hi",
                "to": ["a@mx.test", "b@amx.test", "c@nowhere.test", "d@nullmx.test"],
            }),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let events: Vec<Value> = rx.wait_for_json(4, DEADLINE).await;
    let by = |email: &str| {
        events
            .iter()
            .find(|e| e["data"]["email"] == email)
            .unwrap()
            .clone()
    };
    let a = by("a@mx.test");
    assert_eq!(a["type"], "sent", "{a}");
    assert_eq!(a["data"]["remote_mta"], "mail.mx.test", "the preferred MX");
    let b = by("b@amx.test");
    assert_eq!(b["type"], "sent", "no MX: the domain's own address");
    assert_eq!(b["data"]["remote_mta"], "amx.test");
    let c = by("c@nowhere.test");
    assert_eq!(
        (c["type"].as_str(), c["data"]["reason"].as_str()),
        (Some("bounce"), Some("host_unknown")),
        "{c}"
    );
    let d = by("d@nullmx.test");
    assert_eq!(
        (d["type"].as_str(), d["data"]["reason"].as_str()),
        (Some("bounce"), Some("host_unknown")),
        "{d}"
    );
    t.stop().await;
}

/// A recipient's domain is the sender's to choose: mail hosts on this
/// machine or in the operator's network are not delivered to unless the
/// operator allows it, and the mail bounces instead.
#[tokio::test]
async fn mail_hosts_on_internal_addresses_are_refused() {
    use std::collections::HashMap;
    use tidings_testkit::dns::Zone;
    let mx = Mx::start();
    let zone = |mx: Vec<(u16, String)>, a: Vec<std::net::Ipv4Addr>| Zone {
        mx,
        a,
        ..Default::default()
    };
    let zones = HashMap::from([
        (
            "loop.test".to_string(),
            zone(vec![(10, "mail.loop.test".into())], vec![]),
        ),
        (
            "mail.loop.test".to_string(),
            zone(vec![], vec!["127.0.0.1".parse().unwrap()]),
        ),
        (
            "lan.test".to_string(),
            zone(vec![], vec!["10.1.2.3".parse().unwrap()]),
        ),
        (
            "meta.test".to_string(),
            zone(vec![], vec!["169.254.169.254".parse().unwrap()]),
        ),
    ]);
    let (_dns, t, rx) = routed_by(zones, &mx, false).await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "subject": "internal", "text": "hi",
                "to": ["a@loop.test", "b@lan.test", "c@meta.test"]}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let events: Vec<Value> = rx.wait_for_json(3, DEADLINE).await;
    for (email, ip) in [
        ("a@loop.test", "127.0.0.1"),
        ("b@lan.test", "10.1.2.3"),
        ("c@meta.test", "169.254.169.254"),
    ] {
        let e = events.iter().find(|e| e["data"]["email"] == email).unwrap();
        assert_eq!(
            (e["type"].as_str(), e["data"]["reason"].as_str()),
            (Some("bounce"), Some("host_unknown")),
            "{e}"
        );
        assert!(
            e["data"]["diagnostic"].as_str().unwrap().contains(ip),
            "{e}"
        );
    }
    assert!(
        mx.messages().is_empty(),
        "nothing reached the MX on loopback"
    );
    t.stop().await;
}
