//! Property tests of VERP addresses: they round-trip, survive case
//! changes, and every forgery, truncation or extension is refused.

use proptest::prelude::*;
use tidings_mail::verp::{VerpCodec, VerpError, VerpToken, TOKEN_CHARS};
use tidings_types::MessageId;

const DOMAIN: &str = "bounces.example.com";
/// Characters a mangled address might contain, of both cases.
const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567ABCXYZ01890-_.@+=";

fn codec(key: &[u8]) -> VerpCodec {
    VerpCodec::new(key, DOMAIN).unwrap()
}

fn id(u: u128) -> MessageId {
    MessageId::from_ulid(ulid::Ulid(u))
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 16..48)
}

/// Where the token starts in `b-<token>@…`.
const TOKEN_AT: usize = 2;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trips(k in key(), u in any::<u128>(), rid in any::<i64>()) {
        let c = codec(&k);
        let addr = c.encode(id(u), rid);
        let (local, domain) = addr.split_once('@').unwrap();
        prop_assert_eq!(domain, DOMAIN);
        prop_assert!(local.starts_with("b-"));
        prop_assert_eq!(local.len(), 2 + TOKEN_CHARS);
        prop_assert!(local.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        let want = VerpToken { message_id: id(u), recipient_id: rid };
        prop_assert_eq!(c.decode(&addr), Ok(want));
        prop_assert_eq!(c.decode(&format!("<{addr}>")), Ok(want));
    }

    #[test]
    fn case_changes_still_decode(k in key(), u in any::<u128>(), rid in any::<i64>(),
                                 mask in prop::collection::vec(any::<bool>(), 80)) {
        let c = codec(&k);
        let addr = c.encode(id(u), rid);
        let want = VerpToken { message_id: id(u), recipient_id: rid };
        prop_assert_eq!(c.decode(&addr.to_ascii_uppercase()), Ok(want));
        let mixed: String = addr
            .chars()
            .zip(mask.iter().cycle())
            .map(|(ch, &up)| if up { ch.to_ascii_uppercase() } else { ch })
            .collect();
        prop_assert_eq!(c.decode(&mixed), Ok(want));
    }

    #[test]
    fn any_single_character_change_fails(k in key(), u in any::<u128>(), rid in any::<i64>(),
                                         at in any::<prop::sample::Index>(),
                                         with in prop::sample::select(CHARSET)) {
        let c = codec(&k);
        let addr = c.encode(id(u), rid);
        let at = at.index(addr.len());
        prop_assume!(!addr.as_bytes()[at].eq_ignore_ascii_case(&with));
        let mut changed = addr.into_bytes();
        changed[at] = with;
        let changed = String::from_utf8(changed).unwrap();
        prop_assert!(c.decode(&changed).is_err(), "{} decoded", changed);
    }

    #[test]
    fn truncation_fails(k in key(), u in any::<u128>(), rid in any::<i64>(),
                        cut in 1..=TOKEN_CHARS, at in any::<prop::sample::Index>()) {
        let c = codec(&k);
        let addr = c.encode(id(u), rid);
        let (local, domain) = addr.split_once('@').unwrap();
        // Characters cut from the end of the token...
        let short = format!("{}@{domain}", &local[..local.len() - cut]);
        prop_assert!(c.decode(&short).is_err(), "{} decoded", short);
        // ...or one character dropped anywhere in the address.
        let at = at.index(addr.len());
        let dropped = format!("{}{}", &addr[..at], &addr[at + 1..]);
        prop_assert!(c.decode(&dropped).is_err(), "{} decoded", dropped);
    }

    #[test]
    fn extension_fails(k in key(), u in any::<u128>(), rid in any::<i64>(),
                       extra in prop::collection::vec(prop::sample::select(CHARSET), 1..4),
                       at in 0..=TOKEN_CHARS) {
        let c = codec(&k);
        let addr = c.encode(id(u), rid);
        let extra = String::from_utf8(extra).unwrap();
        let at = TOKEN_AT + at;
        let longer = format!("{}{extra}{}", &addr[..at], &addr[at..]);
        prop_assert!(c.decode(&longer).is_err(), "{} decoded", longer);
    }

    #[test]
    fn random_tokens_are_refused(k in key(), token in "[a-z2-7]{56}") {
        let c = codec(&k);
        let r = c.decode(&format!("b-{token}@{DOMAIN}"));
        prop_assert!(matches!(r, Err(VerpError::BadMac | VerpError::Malformed)), "{:?}", r);
    }

    #[test]
    fn another_key_is_refused_but_a_previous_one_accepted(
        old in key(), new in key(), other in key(), u in any::<u128>(), rid in any::<i64>()
    ) {
        prop_assume!(old != new && other != old && other != new);
        let rotated = VerpCodec::new(&new, DOMAIN).unwrap().with_previous_keys([&old]).unwrap();
        let want = VerpToken { message_id: id(u), recipient_id: rid };
        prop_assert_eq!(rotated.decode(&codec(&old).encode(id(u), rid)), Ok(want));
        prop_assert_eq!(rotated.decode(&codec(&new).encode(id(u), rid)), Ok(want));
        // A rotated codec signs with its current key only.
        prop_assert_eq!(codec(&new).decode(&rotated.encode(id(u), rid)), Ok(want));
        prop_assert_eq!(
            rotated.decode(&codec(&other).encode(id(u), rid)),
            Err(VerpError::BadMac)
        );
    }
}

#[test]
fn domain_and_prefix_are_checked() {
    let c = codec(&[1; 32]);
    let addr = c.encode(MessageId::new(), 7);
    let token = addr.strip_prefix("b-").unwrap().split('@').next().unwrap();
    assert_eq!(
        c.decode(&format!("b-{token}@other.example.com")),
        Err(VerpError::WrongDomain)
    );
    assert_eq!(
        c.decode(&format!("b-{token}@{DOMAIN}."))
            .map(|t| t.recipient_id),
        Ok(7),
        "a trailing root dot is the same domain"
    );
    assert_eq!(
        c.decode(&format!("x-{token}@{DOMAIN}")),
        Err(VerpError::WrongPrefix)
    );
    assert_eq!(
        c.decode(&format!("b{token}@{DOMAIN}")),
        Err(VerpError::WrongPrefix)
    );
    assert_eq!(
        c.decode(&format!("é-{token}@{DOMAIN}")),
        Err(VerpError::WrongPrefix)
    );
    assert_eq!(c.decode("postmaster"), Err(VerpError::NotAnAddress));
    assert_eq!(c.decode(&format!("b-@{DOMAIN}")), Err(VerpError::Malformed));

    let long = VerpCodec::new(&[1; 32], DOMAIN)
        .unwrap()
        .with_prefix("bounce7")
        .unwrap();
    let addr = long.encode(MessageId::new(), i64::MIN);
    let local = addr.split('@').next().unwrap();
    assert_eq!(
        local.len(),
        64,
        "the longest prefix fills the local part exactly"
    );
    assert_eq!(long.decode(&addr).unwrap().recipient_id, i64::MIN);
    assert_eq!(c.decode(&addr), Err(VerpError::WrongPrefix));
}

#[test]
fn a_token_under_a_retired_key_is_refused() {
    let old = codec(&[1; 32]);
    let addr = old.encode(MessageId::new(), 1);
    let rotated = VerpCodec::new(&[2; 32], DOMAIN)
        .unwrap()
        .with_previous_keys([[1u8; 32]])
        .unwrap();
    assert!(rotated.decode(&addr).is_ok());
    let retired = VerpCodec::new(&[2; 32], DOMAIN).unwrap();
    assert_eq!(retired.decode(&addr), Err(VerpError::BadMac));
    assert_eq!(
        VerpCodec::new(&[2; 32], DOMAIN)
            .unwrap()
            .with_previous_keys([[0u8; 8]])
            .unwrap_err(),
        VerpError::ShortKey
    );
}
