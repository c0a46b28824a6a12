//! VERP return paths: the envelope sender of each outbound copy names the
//! message and the recipient, so an asynchronous bounce (a DSN sent to that
//! address days later, by a server that may mangle everything else) still
//! tells us whose delivery failed.
//!
//! An address looks like `b-<token>@bounces.example.com`. The token is 35
//! bytes written as 56 characters of lowercase RFC 4648 base32:
//!
//! ```text
//! version (1) | message ULID (16) | recipient row id (8, big-endian) | MAC (10)
//! ```
//!
//! - Base32, not base64 or mixed case, because many MTAs lowercase (or
//!   uppercase) the local part; decoding ignores case. Not Crockford
//!   base32 either: its lenient aliases (`o` for `0`, `l` for `1`) would let
//!   two different strings decode to one token. Hex would be 70 characters
//!   and overflow the 64-character local part that RFC 5321 allows; this is
//!   `prefix` + 57, so prefixes are at most 7 characters.
//! - The MAC is HMAC-SHA256 over a domain-separation label and the first 25
//!   bytes, truncated to 80 bits: enough against online forgery, where each
//!   guess costs the forger an email. Without it anyone could send a fake
//!   DSN that marks an arbitrary recipient as bounced and suppresses them.
//!   It is compared in constant time.
//! - Keys rotate: a codec signs with its current key and accepts tokens
//!   made under any of its previous keys, so bounces for mail sent before a
//!   rotation (they arrive for days) still decode. Drop an old key once
//!   the retry window (3 days) plus a margin has passed.
//! - The version byte leaves room for another layout without guessing.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tidings_types::MessageId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const MAC_LABEL: &[u8] = b"tidings verp v1\0";
const MAC_LEN: usize = 10;
const PAYLOAD_LEN: usize = 1 + 16 + 8;
const TOKEN_BYTES: usize = PAYLOAD_LEN + MAC_LEN;
/// Characters in an encoded token (35 bytes, a whole number of 5-byte groups).
pub const TOKEN_CHARS: usize = TOKEN_BYTES / 5 * 8;
const MAX_LOCAL_PART: usize = 64;
const MAX_PREFIX: usize = MAX_LOCAL_PART - 1 - TOKEN_CHARS;
const MIN_KEY: usize = 16;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// What a VERP address says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerpToken {
    pub message_id: MessageId,
    /// The recipient's row id.
    pub recipient_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    #[error("a VERP key must be at least {MIN_KEY} bytes")]
    ShortKey,
    #[error("`{0}` is not a valid bounce domain")]
    InvalidDomain(String),
    #[error("`{0}` is not a valid VERP prefix (1 to {MAX_PREFIX} ASCII letters or digits)")]
    InvalidPrefix(String),
    #[error("not an email address")]
    NotAnAddress,
    #[error("the address is not at the bounce domain")]
    WrongDomain,
    #[error("the local part does not start with the VERP prefix")]
    WrongPrefix,
    #[error("the VERP token is malformed")]
    Malformed,
    #[error("the VERP token's MAC does not match: forged, altered, or made under a retired key")]
    BadMac,
}

/// Makes and reads VERP addresses for one bounce domain.
#[derive(Clone)]
pub struct VerpCodec {
    /// The current key first, then the previous ones; each already keyed.
    keys: Vec<HmacSha256>,
    domain: String,
    prefix: String,
}

impl fmt::Debug for VerpCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerpCodec")
            .field("domain", &self.domain)
            .field("prefix", &self.prefix)
            .field("keys", &format_args!("{} (redacted)", self.keys.len()))
            .finish()
    }
}

impl VerpCodec {
    pub const DEFAULT_PREFIX: &'static str = "b";

    /// A codec signing with `key` (at least 16 random bytes; 32 advised)
    /// for addresses at `domain`, with the prefix `b`.
    pub fn new(key: &[u8], domain: &str) -> Result<Self, VerpError> {
        let domain = check_domain(domain).ok_or_else(|| VerpError::InvalidDomain(domain.into()))?;
        Ok(Self {
            keys: vec![hmac_key(key)?],
            domain,
            prefix: Self::DEFAULT_PREFIX.to_string(),
        })
    }

    /// Use another prefix (1 to 7 ASCII letters or digits, kept lowercase).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, VerpError> {
        let p = prefix.to_ascii_lowercase();
        if p.is_empty() || p.len() > MAX_PREFIX || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(VerpError::InvalidPrefix(prefix.into()));
        }
        self.prefix = p;
        Ok(self)
    }

    /// Also accept tokens made under these older keys (newest first is
    /// fastest). Encoding always uses the current key.
    pub fn with_previous_keys<K: AsRef<[u8]>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Self, VerpError> {
        for k in keys {
            self.keys.push(hmac_key(k.as_ref())?);
        }
        Ok(self)
    }

    /// The bounce domain, lowercase.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The return path for one recipient of one message.
    pub fn encode(&self, message_id: MessageId, recipient_id: i64) -> String {
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[0] = VERSION;
        bytes[1..17].copy_from_slice(&u128::from(message_id.ulid()).to_be_bytes());
        bytes[17..PAYLOAD_LEN].copy_from_slice(&recipient_id.to_be_bytes());
        let tag = mac(&self.keys[0], &bytes[..PAYLOAD_LEN])
            .finalize()
            .into_bytes();
        bytes[PAYLOAD_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        format!("{}-{}@{}", self.prefix, base32(&bytes), self.domain)
    }

    /// Read a VERP address (with or without angle brackets, in any case).
    /// Refuses another domain or prefix, a malformed token, and a token
    /// whose MAC matches none of the keys.
    pub fn decode(&self, address: &str) -> Result<VerpToken, VerpError> {
        let address = address.trim();
        let address = address
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(address);
        let (local, domain) = address.rsplit_once('@').ok_or(VerpError::NotAnAddress)?;
        if !domain
            .trim_end_matches('.')
            .eq_ignore_ascii_case(&self.domain)
        {
            return Err(VerpError::WrongDomain);
        }
        let (local, n) = (local.as_bytes(), self.prefix.len());
        if local.len() <= n
            || !local[..n].eq_ignore_ascii_case(self.prefix.as_bytes())
            || local[n] != b'-'
        {
            return Err(VerpError::WrongPrefix);
        }
        let bytes = unbase32(&local[n + 1..]).ok_or(VerpError::Malformed)?;
        if bytes[0] != VERSION {
            return Err(VerpError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        // Every key is tried, so the time taken says nothing about which
        // (if any) matched.
        let ok = self.keys.iter().fold(false, |ok, k| {
            mac(k, payload).verify_truncated_left(tag).is_ok() | ok
        });
        if !ok {
            return Err(VerpError::BadMac);
        }
        let mut ulid = [0u8; 16];
        ulid.copy_from_slice(&payload[1..17]);
        let mut rid = [0u8; 8];
        rid.copy_from_slice(&payload[17..]);
        Ok(VerpToken {
            message_id: MessageId::from_ulid(ulid::Ulid(u128::from_be_bytes(ulid))),
            recipient_id: i64::from_be_bytes(rid),
        })
    }
}

fn hmac_key(key: &[u8]) -> Result<HmacSha256, VerpError> {
    if key.len() < MIN_KEY {
        return Err(VerpError::ShortKey);
    }
    HmacSha256::new_from_slice(key).map_err(|_| VerpError::ShortKey)
}

fn mac(key: &HmacSha256, payload: &[u8]) -> HmacSha256 {
    let mut m = key.clone();
    m.update(MAC_LABEL);
    m.update(payload);
    m
}

fn check_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = d.contains('.')
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(d)
}

fn base32(bytes: &[u8; TOKEN_BYTES]) -> String {
    let mut out = String::with_capacity(TOKEN_CHARS);
    for group in bytes.chunks_exact(5) {
        let mut n = group.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
        let mut chars = [0u8; 8];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        out.extend(chars.iter().map(|&c| char::from(c)));
    }
    out
}

fn unbase32(s: &[u8]) -> Option<[u8; TOKEN_BYTES]> {
    if s.len() != TOKEN_CHARS {
        return None;
    }
    let mut out = [0u8; TOKEN_BYTES];
    for (group, chars) in out.chunks_exact_mut(5).zip(s.chunks_exact(8)) {
        let mut n = 0u64;
        for &c in chars {
            let v = match c.to_ascii_lowercase() {
                c @ b'a'..=b'z' => c - b'a',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            n = n << 5 | u64::from(v);
        }
        group.copy_from_slice(&n.to_be_bytes()[3..]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips() {
        let mut b = [0u8; TOKEN_BYTES];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 37 + 11) as u8;
        }
        let s = base32(&b);
        assert_eq!(s.len(), TOKEN_CHARS);
        assert_eq!(unbase32(s.as_bytes()), Some(b));
        assert_eq!(unbase32(s.to_ascii_uppercase().as_bytes()), Some(b));
        assert_eq!(base32(&[0; TOKEN_BYTES]), "a".repeat(TOKEN_CHARS));
        assert_eq!(unbase32("1".repeat(TOKEN_CHARS).as_bytes()), None);
    }

    #[test]
    fn codecs_can_be_shared_between_workers() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<VerpCodec>();
    }

    #[test]
    fn constructor_checks() {
        assert_eq!(
            VerpCodec::new(b"short", "b.example.com").unwrap_err(),
            VerpError::ShortKey
        );
        assert!(VerpCodec::new(&[7; 32], "localhost").is_err());
        let c = VerpCodec::new(&[7; 32], "Bounces.Example.com.").unwrap();
        assert_eq!(c.domain(), "bounces.example.com");
        assert!(c.clone().with_prefix("bounces8").is_err());
        assert!(c.clone().with_prefix("b-x").is_err());
        assert_eq!(c.with_prefix("RET").unwrap().prefix(), "ret");
        assert!(!format!("{:?}", VerpCodec::new(&[7; 32], "a.b").unwrap()).contains('7'));
    }
}
