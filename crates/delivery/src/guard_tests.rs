use super::*;
use std::net::IpAddr;
use AddressClass::*;

fn class(s: &str) -> AddressClass {
    classify_ip(s.parse().unwrap())
}

const NONE: AddressPolicy = AddressPolicy {
    allow_loopback: false,
    allow_private: false,
};
const ALL: AddressPolicy = AddressPolicy {
    allow_loopback: true,
    allow_private: true,
};

#[test]
fn classifies_ipv4() {
    let table = [
        ("8.8.8.8", Public),
        ("93.184.215.14", Public),
        ("1.1.1.1", Public),
        ("127.0.0.1", Loopback),
        ("127.255.1.2", Loopback),
        ("10.1.2.3", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.32.0.1", Public),
        ("192.168.1.1", Private),
        ("100.64.0.1", Private),
        ("100.127.255.254", Private),
        ("100.128.0.1", Public),
        ("169.254.1.1", LinkLocal),
        ("169.254.169.254", Metadata),
        ("169.254.170.2", Metadata),
        ("100.100.100.200", Metadata),
        ("168.63.129.16", Metadata),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("255.255.255.255", Broadcast),
        ("192.0.2.10", Reserved),
        ("198.51.100.7", Reserved),
        ("203.0.113.9", Reserved),
        ("198.18.0.1", Reserved),
        ("198.19.255.255", Reserved),
        ("198.20.0.1", Public),
        ("192.0.0.8", Reserved),
        ("240.0.0.1", Reserved),
    ];
    for (ip, expected) in table {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

#[test]
fn classifies_ipv6_and_looks_through_embedded_ipv4() {
    let table = [
        ("2606:4700:4700::1111", Public),
        ("2a00:1450:4001:80b::200e", Public),
        ("::1", Loopback),
        ("::", Unspecified),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("fec0::1", Private),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fd00:ec2::254", Metadata),
        ("ff02::1", Multicast),
        ("ff05::2", Multicast),
        ("2001:db8::1", Reserved),
        ("3fff::1", Reserved),
        ("2001:2::1", Reserved),
        ("2001::1", Reserved),
        ("2001:20::1", Reserved),
        ("100::1", Reserved),
        ("5f00::1", Reserved),
        // IPv4-mapped.
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:10.0.0.1", Private),
        ("::ffff:169.254.169.254", Metadata),
        ("::ffff:8.8.8.8", Public),
        ("::ffff:0.0.0.0", Unspecified),
        // IPv4-compatible (deprecated).
        ("::127.0.0.1", Loopback),
        ("::192.168.0.1", Private),
        ("::8.8.8.8", Public),
        // NAT64, well-known and local-use prefixes.
        ("64:ff9b::7f00:1", Loopback),
        ("64:ff9b::a9fe:a9fe", Metadata),
        ("64:ff9b::808:808", Public),
        ("64:ff9b:1::c0a8:1", Private),
        // 6to4.
        ("2002:7f00:1::", Loopback),
        ("2002:a9fe:a9fe::1", Metadata),
        ("2002:808:808::1", Public),
    ];
    for (ip, expected) in table {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

#[test]
fn policy_matrix() {
    let loopback = AddressPolicy {
        allow_loopback: true,
        ..NONE
    };
    let private = AddressPolicy {
        allow_private: true,
        ..NONE
    };
    assert_eq!(AddressPolicy::default(), NONE);
    let cases = [
        // class, none, loopback only, private only, both
        (Public, [true, true, true, true]),
        (Loopback, [false, true, false, true]),
        (Private, [false, false, true, true]),
        (LinkLocal, [false, false, true, true]),
        (Reserved, [false, false, true, true]),
        (Metadata, [false; 4]),
        (Unspecified, [false; 4]),
        (Multicast, [false; 4]),
        (Broadcast, [false; 4]),
    ];
    for (class, expected) in cases {
        let got = [NONE, loopback, private, ALL].map(|p| p.allows(class));
        assert_eq!(got, expected, "{class}");
    }
    let err = NONE.check_ip("127.0.0.1".parse().unwrap()).unwrap_err();
    assert_eq!(err.class, Loopback);
    assert!(err.to_string().contains("loopback"));
    assert!(ALL.check_ip("169.254.169.254".parse().unwrap()).is_err());
    assert!(ALL
        .check_ip("::ffff:169.254.169.254".parse().unwrap())
        .is_err());
    assert!(ALL.check_ip("10.0.0.1".parse().unwrap()).is_ok());
}

fn check(url: &str, policy: AddressPolicy) -> Result<(), UrlError> {
    check_url(&url.parse().unwrap(), &policy)
}

#[test]
fn check_url_accepts_public_http_and_https() {
    for url in [
        "https://hooks.example.com/tidings?token=abc",
        "http://hooks.example.com:8080/x",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
    ] {
        assert_eq!(check(url, NONE), Ok(()), "{url}");
    }
}

#[test]
fn check_url_rejections_have_stable_codes() {
    let cases = [
        ("ftp://example.com/", "url_scheme"),
        ("file:///etc/passwd", "url_scheme"),
        ("mailto:a@example.com", "url_scheme"),
        ("https://user:pass@example.com/", "url_credentials"),
        ("https://user@example.com/", "url_credentials"),
        ("http://127.0.0.1:8080/", "url_blocked"),
        ("http://2130706433/", "url_blocked"), // 127.0.0.1 in decimal
        ("http://0x7f.1/", "url_blocked"),
        ("http://[::1]/", "url_blocked"),
        ("http://[::ffff:127.0.0.1]/", "url_blocked"),
        ("http://10.0.0.5/", "url_blocked"),
        ("http://169.254.169.254/latest/meta-data", "url_blocked"),
        ("http://0.0.0.0:9000/", "url_blocked"),
        ("http://localhost:3000/", "url_blocked"),
        ("http://LOCALHOST./", "url_blocked"),
        ("http://app.localhost/", "url_blocked"),
        ("http://metadata.google.internal/", "url_blocked"),
    ];
    for (url, code) in cases {
        let err = check(url, NONE).unwrap_err();
        assert_eq!(err.code(), code, "{url}: {err}");
    }
}

#[test]
fn check_url_follows_the_policy() {
    assert_eq!(
        check(
            "http://localhost:3000/",
            AddressPolicy {
                allow_loopback: true,
                ..NONE
            }
        ),
        Ok(())
    );
    assert_eq!(check("http://127.0.0.1/", ALL), Ok(()));
    assert_eq!(check("http://192.168.1.20/", ALL), Ok(()));
    // Never allowed, whatever the policy.
    for url in [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://255.255.255.255/",
        "http://224.0.0.1/",
        "http://metadata.google.internal/",
    ] {
        assert!(check(url, ALL).is_err(), "{url}");
    }
    match check("http://localhost/", NONE) {
        Err(UrlError::BlockedHost { host, class }) => {
            assert_eq!(host, "localhost");
            assert_eq!(class, Loopback);
        }
        other => panic!("{other:?}"),
    }
    match check("http://10.1.1.1/", NONE) {
        Err(UrlError::BlockedAddress(b)) => assert_eq!(b.class, Private),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn resolver_refuses_names_that_resolve_to_blocked_addresses() {
    let strict = GuardedResolver::new(NONE);
    match strict.lookup("localhost").await {
        Err(ResolveError::Blocked { host, first }) => {
            assert_eq!(host, "localhost");
            assert_eq!(first.class, Loopback);
        }
        other => panic!("{other:?}"),
    }
    let open = GuardedResolver::new(AddressPolicy {
        allow_loopback: true,
        ..NONE
    });
    let addrs = open.lookup("localhost").await.unwrap();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    assert!(addrs.iter().any(|a| a.ip() == IpAddr::from([127, 0, 0, 1])));
}

#[tokio::test]
async fn resolver_through_the_reqwest_trait() {
    let strict = GuardedResolver::new(NONE);
    let name: Name = "localhost".parse().unwrap();
    let err = match strict.resolve(name).await {
        Ok(_) => panic!("localhost must be refused"),
        Err(e) => e,
    };
    assert!(matches!(
        err.downcast_ref::<ResolveError>(),
        Some(ResolveError::Blocked { .. })
    ));
    let open = GuardedResolver::new(ALL);
    let name: Name = "localhost".parse().unwrap();
    let addrs: Vec<_> = open.resolve(name).await.unwrap().collect();
    assert!(!addrs.is_empty());
}

#[tokio::test]
async fn resolver_reports_lookup_failures() {
    let r = GuardedResolver::new(NONE);
    // `.invalid` is reserved (RFC 2606) and never resolves.
    match r.lookup("no-such-host.invalid").await {
        Err(ResolveError::Lookup { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
        other => panic!("{other:?}"),
    }
}
