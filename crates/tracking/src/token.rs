//! Signed tracking tokens.
//!
//! A token names one recipient of one message and what the link does (open
//! pixel, the n-th click link, unsubscribe). It carries no URL: the click
//! redirect target is looked up from the list of original links stored when
//! the message was sent, so a token can only ever lead where the sender
//! wrote, and a forged token leads nowhere.
//!
//! Layout (before base64url without padding):
//!
//! ```text
//! version (1 byte, = 1) | key id (1 byte)
//! account id | message id | recipient id      (zigzag LEB128 varints)
//! kind (1 byte: 0 open, 1 click, 2 unsubscribe) [| link index (LEB128)]
//! MAC: the first 12 bytes of HMAC-SHA256(key, "tidings-track" | all of the above)
//! ```
//!
//! Ids of ordinary size make a token of about 30 to 40 characters. The MAC
//! is truncated to 96 bits (as HMAC-SHA-256-96 in RFC 4868 §2.6): an attacker
//! can only test guesses online, one HTTP request each. Verification
//! compares in constant time. The key id selects the key, so keys can be
//! rotated: tokens signed with a key in `previous` keep working until that
//! key is dropped from the configuration.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const MAC_LEN: usize = 12;
/// Domain separation, so these keys' MACs mean nothing anywhere else.
const CONTEXT: &[u8] = b"tidings-track";
/// version + key id + 3 ids of at most 10 bytes + kind + link index of at
/// most 5 bytes + MAC.
const MAX_BYTES: usize = 2 + 3 * 10 + 1 + 5 + MAC_LEN;
const MIN_BYTES: usize = 2 + 3 + 1 + MAC_LEN;
/// Longest token text accepted before any decoding work is done.
pub const MAX_TOKEN_LEN: usize = MAX_BYTES.div_ceil(3) * 4;

/// What following a tracking URL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The open pixel.
    Open,
    /// The `link_index`-th tracked link of the message (0-based, in the
    /// order the rewriter found them).
    Click { link_index: u32 },
    /// The unsubscribe link (and the RFC 8058 one-click POST target).
    Unsubscribe,
}

/// What a token says, once its signature has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claims {
    pub account_id: i64,
    pub message_id: i64,
    pub recipient_id: i64,
    pub kind: TokenKind,
}

/// Why a token was refused. The web layer answers 404 to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not well formed")]
    Malformed,
    #[error("the token has an unknown format version {0}")]
    UnknownVersion(u8),
    #[error("the token was signed with key {0}, which is not configured")]
    UnknownKey(u8),
    #[error("the token's signature does not match")]
    BadSignature,
}

/// Two configured keys share one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tracking key id {0} is configured more than once")]
pub struct DuplicateKeyId(pub u8);

/// The signing key in use and the keys still accepted.
///
/// Each key is kept as a keyed HMAC state, so signing a token hashes only
/// the token's bytes. `Debug` never shows key material.
#[derive(Clone)]
pub struct TokenKeys {
    current: (u8, HmacSha256),
    previous: Vec<(u8, HmacSha256)>,
}

impl TokenKeys {
    /// `current` signs new tokens; it and every key in `previous` verify.
    pub fn new(
        current: (u8, [u8; 32]),
        previous: Vec<(u8, [u8; 32])>,
    ) -> Result<Self, DuplicateKeyId> {
        let mut seen = [false; 256];
        seen[current.0 as usize] = true;
        for (id, _) in &previous {
            if std::mem::replace(&mut seen[*id as usize], true) {
                return Err(DuplicateKeyId(*id));
            }
        }
        let keyed = |key: &[u8; 32]| {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(CONTEXT);
            mac
        };
        Ok(Self {
            current: (current.0, keyed(&current.1)),
            previous: previous.iter().map(|(id, k)| (*id, keyed(k))).collect(),
        })
    }

    /// The id of the key new tokens are signed with.
    pub fn current_key_id(&self) -> u8 {
        self.current.0
    }

    /// A URL-safe token for `claims`, signed with the current key.
    pub fn issue(&self, claims: &Claims) -> String {
        let mut buf = [0u8; MAX_BYTES];
        let mut n = 0;
        let mut push = |b: u8| {
            buf[n] = b;
            n += 1;
        };
        push(VERSION);
        push(self.current.0);
        for id in [claims.account_id, claims.message_id, claims.recipient_id] {
            write_varint(zigzag(id), &mut push);
        }
        match claims.kind {
            TokenKind::Open => push(0),
            TokenKind::Click { link_index } => {
                push(1);
                write_varint(u64::from(link_index), &mut push);
            }
            TokenKind::Unsubscribe => push(2),
        }
        let mut mac = self.current.1.clone();
        mac.update(&buf[..n]);
        let tag = mac.finalize().into_bytes();
        buf[n..n + MAC_LEN].copy_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(&buf[..n + MAC_LEN])
    }

    /// The claims of a token this configuration signed, or why not.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut buf = [0u8; MAX_BYTES + 3];
        // Strict decoding: non-canonical trailing bits are refused, so no
        // two texts decode to the same bytes.
        let len = URL_SAFE_NO_PAD
            .decode_slice(token.as_bytes(), &mut buf)
            .map_err(|_| TokenError::Malformed)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&len) {
            return Err(TokenError::Malformed);
        }
        let bytes = &buf[..len];
        if bytes[0] != VERSION {
            return Err(TokenError::UnknownVersion(bytes[0]));
        }
        let key_id = bytes[1];
        let key = if self.current.0 == key_id {
            &self.current.1
        } else {
            self.previous
                .iter()
                .find(|(id, _)| *id == key_id)
                .map(|(_, k)| k)
                .ok_or(TokenError::UnknownKey(key_id))?
        };
        let (payload, tag) = bytes.split_at(len - MAC_LEN);
        let mut mac = key.clone();
        mac.update(payload);
        // Constant-time comparison of the leftmost MAC_LEN bytes.
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        parse_payload(&payload[2..]).ok_or(TokenError::Malformed)
    }
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("current_key_id", &self.current.0)
            .field(
                "previous_key_ids",
                &self.previous.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn parse_payload(mut p: &[u8]) -> Option<Claims> {
    let account_id = unzigzag(read_varint(&mut p)?);
    let message_id = unzigzag(read_varint(&mut p)?);
    let recipient_id = unzigzag(read_varint(&mut p)?);
    let (&kind, rest) = p.split_first()?;
    p = rest;
    let kind = match kind {
        0 => TokenKind::Open,
        1 => TokenKind::Click {
            link_index: u32::try_from(read_varint(&mut p)?).ok()?,
        },
        2 => TokenKind::Unsubscribe,
        _ => return None,
    };
    p.is_empty().then_some(Claims {
        account_id,
        message_id,
        recipient_id,
        kind,
    })
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn write_varint(mut v: u64, push: &mut impl FnMut(u8)) {
    while v >= 0x80 {
        push((v as u8) | 0x80);
        v >>= 7;
    }
    push(v as u8);
}

/// LEB128, at most 10 bytes, minimal encoding only.
fn read_varint(p: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = p.split_first()?;
        *p = rest;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> TokenKeys {
        TokenKeys::new((2, [7u8; 32]), vec![(1, [9u8; 32])]).unwrap()
    }

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            account_id: 1,
            message_id: 123_456,
            recipient_id: 789,
            kind,
        }
    }

    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn any_kind() -> impl Strategy<Value = TokenKind> {
        prop_oneof![
            Just(TokenKind::Open),
            Just(TokenKind::Unsubscribe),
            any::<u32>().prop_map(|link_index| TokenKind::Click { link_index }),
        ]
    }

    fn any_claims() -> impl Strategy<Value = Claims> {
        (any::<i64>(), any::<i64>(), any::<i64>(), any_kind()).prop_map(|(a, m, r, kind)| Claims {
            account_id: a,
            message_id: m,
            recipient_id: r,
            kind,
        })
    }

    proptest! {
        #[test]
        fn round_trip(c in any_claims()) {
            let k = keys();
            let t = k.issue(&c);
            prop_assert!(t.len() <= MAX_TOKEN_LEN);
            prop_assert!(t.bytes().all(|b| B64.contains(&b)));
            prop_assert_eq!(k.verify(&t), Ok(c));
        }

        #[test]
        fn any_single_character_change_fails(c in any_claims(), pos in any::<prop::sample::Index>(), with in 0usize..64) {
            let k = keys();
            let t = k.issue(&c);
            let i = pos.index(t.len());
            let replacement = B64[with];
            prop_assume!(t.as_bytes()[i] != replacement);
            let mut changed = t.clone().into_bytes();
            changed[i] = replacement;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(k.verify(&changed).is_err(), "{t} -> {changed}");
        }

        #[test]
        fn truncation_fails(c in any_claims(), cut in 1usize..40) {
            let k = keys();
            let t = k.issue(&c);
            let keep = t.len().saturating_sub(cut);
            prop_assert!(k.verify(&t[..keep]).is_err());
        }

        #[test]
        fn extension_fails(c in any_claims(), extra in "[A-Za-z0-9_-]{1,8}") {
            let k = keys();
            let t = k.issue(&c);
            let extended = format!("{t}{extra}");
            prop_assert!(k.verify(&extended).is_err());
        }

        #[test]
        fn garbage_is_refused_without_panicking(s in "\\PC{0,80}") {
            let _ = keys().verify(&s);
        }
    }

    #[test]
    fn tokens_are_compact() {
        let t = keys().issue(&claims(TokenKind::Click { link_index: 12 }));
        assert!(t.len() <= 40, "{t} is {} characters", t.len());
    }

    #[test]
    fn previous_keys_verify_and_unknown_keys_do_not() {
        let old = TokenKeys::new((1, [9u8; 32]), vec![]).unwrap();
        let t = old.issue(&claims(TokenKind::Open));
        assert_eq!(keys().verify(&t), Ok(claims(TokenKind::Open)));

        let rotated_out = TokenKeys::new((3, [5u8; 32]), vec![(2, [7u8; 32])]).unwrap();
        assert_eq!(rotated_out.verify(&t), Err(TokenError::UnknownKey(1)));
    }

    #[test]
    fn another_key_with_the_same_id_is_a_bad_signature() {
        let other = TokenKeys::new((2, [8u8; 32]), vec![]).unwrap();
        let t = other.issue(&claims(TokenKind::Unsubscribe));
        assert_eq!(keys().verify(&t), Err(TokenError::BadSignature));
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let k = keys();
        let open = k.issue(&claims(TokenKind::Open));
        let unsub = k.issue(&claims(TokenKind::Unsubscribe));
        assert_ne!(open, unsub);
        assert_eq!(k.verify(&open).unwrap().kind, TokenKind::Open);
    }

    #[test]
    fn duplicate_key_ids_are_refused() {
        assert_eq!(
            TokenKeys::new((1, [0; 32]), vec![(1, [1; 32])]).unwrap_err(),
            DuplicateKeyId(1)
        );
        assert_eq!(
            TokenKeys::new((1, [0; 32]), vec![(2, [1; 32]), (2, [3; 32])]).unwrap_err(),
            DuplicateKeyId(2)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let d = format!("{:?}", keys());
        assert!(d.contains("current_key_id: 2"), "{d}");
        assert!(!d.contains("7, 7"), "{d}");
    }

    #[test]
    fn varints_are_minimal() {
        assert_eq!(read_varint(&mut &[0x80, 0x00][..]), None);
        assert_eq!(read_varint(&mut &[0x81, 0x01][..]), Some(129));
        let mut buf = Vec::new();
        write_varint(u64::MAX, &mut |b| buf.push(b));
        assert_eq!(read_varint(&mut &buf[..]), Some(u64::MAX));
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
