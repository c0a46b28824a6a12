//! DKIM signing per sending domain (RFC 6376, RFC 8463 for Ed25519).
//!
//! Two types, for two lifetimes. A [`DkimKey`] is what the store keeps for a
//! sending domain: domain, selector, algorithm and the private key as PEM
//! (wrapped so it never prints); it also gives the DNS TXT record the user
//! must publish ([`DkimKey::dns_record`]). A [`Signer`] is what the
//! outbound path keeps: the key parsed once, so the hot path pays only for
//! hashing and the signature itself, never for PEM and ASN.1 parsing. Build
//! one `Signer` per domain and share it (it is `Send + Sync`).
//!
//! The policy is fixed rather than configurable, because every choice here
//! has one right answer for transactional mail:
//!
//! - `c=relaxed/relaxed`, which survives the header refolding and
//!   whitespace changes that relays make; no `l=` (a body-length limit lets
//!   anyone append content under our signature) and no `x=`.
//! - The signed headers are those of [`SIGNED_HEADERS`] that the message
//!   has, each instance of them, plus `From` once more than it occurs
//!   ("oversigned"), so no second `From` can be added in transit without
//!   breaking the signature. A message without `From` is refused.
//! - `t=` is the `now` the caller passes in (time is a parameter here, as
//!   everywhere in tidings), so a test can pin it.
//!
//! Canonicalisation, the body hash, the signature tags and their folding
//! come from `mail-auth`, the library Stalwart uses; the cryptography is
//! `ring` through mail-auth's `ring` feature (constant-time RSA, and no
//! aws-lc, whose build wants cmake). `ring` cannot generate RSA keys, so [`DkimKey::generate`] uses
//! the `rsa` crate for that one-off step; it is never used to sign.
//!
//! The RSA public key is published as a SubjectPublicKeyInfo, the form
//! `openssl rsa -pubout` prints and every verifier accepts (some, such as
//! dkimpy, accept nothing else); the Ed25519 one is the raw 32-byte key, as
//! RFC 8463 requires.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use mail_auth::common::crypto::{DkimKey as AuthKey, Ed25519Key, RsaKey, Sha256, SigningKey as _};
use mail_auth::common::headers::{HeaderStream, Writable, Writer};
use mail_auth::dkim::{Canonicalization, Signature};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tidings_types::SecretString;

/// The headers signed, every instance of each that the message has (`h=`
/// lists them bottom-up, as found, then `From` again).
pub const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The signing algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// `rsa-sha256`. Generated keys are 2048 bits, the size every receiver
    /// accepts and that fits in DNS; imported keys may be 2048 to 4096 bits.
    Rsa2048,
    /// `ed25519-sha256` (RFC 8463). Small and fast, but not yet verified by
    /// every receiver: sign with an RSA key as well when using it.
    Ed25519,
}

impl KeyAlgorithm {
    /// The `k=` tag of the DNS record.
    pub fn dns_k(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("`{0}` is not a valid DKIM signing domain (an ASCII host name)")]
    InvalidDomain(String),
    #[error("`{0}` is not a valid DKIM selector (dot-separated letters, digits and hyphens)")]
    InvalidSelector(String),
    #[error("the private key is not PEM")]
    Pem(#[source] rustls_pki_types::pem::Error),
    #[error("the private key is not a PKCS#1 or PKCS#8 RSA (2048 to 4096 bits) or Ed25519 key")]
    UnsupportedKey,
    #[error("the key is {found:?}, not the {expected:?} it was declared as")]
    AlgorithmMismatch {
        expected: KeyAlgorithm,
        found: KeyAlgorithm,
    },
    #[error("RSA key generation failed")]
    RsaGenerate(#[source] rsa::Error),
    #[error("encoding the key failed")]
    Encode(#[source] rsa::pkcs8::Error),
    #[error("the cryptography library failed")]
    Crypto(#[source] mail_auth::Error),
    #[error("the message has no From header, which DKIM must sign")]
    NoFrom,
    #[error("header field {0} of the message has no name and colon")]
    BadHeader(usize),
}

/// The TXT record that publishes a key: `name` is the owner name
/// (`<selector>._domainkey.<domain>`), `value` the record text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsRecord {
    pub name: String,
    pub value: String,
}

impl DnsRecord {
    /// The value cut into the at most 255-byte strings one TXT record is
    /// made of, for zone files and DNS APIs that do not split it themselves
    /// (an RSA-2048 record is about 410 bytes).
    pub fn character_strings(&self) -> Vec<&str> {
        // The value is ASCII, so any byte offset is a char boundary.
        self.value
            .as_bytes()
            .chunks(255)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect()
    }
}

/// A sending domain's DKIM key, as stored.
#[derive(Clone, Debug)]
pub struct DkimKey {
    /// The `d=` domain, lowercased.
    pub domain: String,
    /// The `s=` selector, lowercased.
    pub selector: String,
    pub algorithm: KeyAlgorithm,
    private_pem: SecretString,
    /// What `p=` carries (SPKI DER for RSA, the raw key for Ed25519).
    public_key: Vec<u8>,
}

impl DkimKey {
    /// A fresh key. RSA-2048 generation takes a noticeable fraction of a
    /// second; call it off the async runtime's worker threads.
    pub fn generate(
        domain: &str,
        selector: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<Self, DkimError> {
        // Checked before the (costly) key is made.
        check_names(domain, selector)?;
        let pem = match algorithm {
            KeyAlgorithm::Rsa2048 => {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                    .map_err(DkimError::RsaGenerate)?;
                key.to_pkcs8_pem(LineEnding::LF)
                    .map_err(DkimError::Encode)?
                    .to_string()
            }
            KeyAlgorithm::Ed25519 => pem_encode(
                "PRIVATE KEY",
                &Ed25519Key::generate_pkcs8().map_err(DkimError::Crypto)?,
            ),
        };
        let key = Self::from_pem(domain, selector, &pem)?;
        if key.algorithm != algorithm {
            return Err(DkimError::AlgorithmMismatch {
                expected: algorithm,
                found: key.algorithm,
            });
        }
        Ok(key)
    }

    /// A key read from PEM: PKCS#8 (`PRIVATE KEY`, RSA or Ed25519, as
    /// `openssl genpkey` writes) or PKCS#1 (`RSA PRIVATE KEY`, as older
    /// `openssl genrsa` and opendkim-genkey write). The algorithm is read
    /// from the key.
    pub fn from_pem(domain: &str, selector: &str, pem: &str) -> Result<Self, DkimError> {
        let (domain, selector) = check_names(domain, selector)?;
        let (parsed, algorithm) = parse_pem(pem)?;
        let public_key = match &parsed {
            AuthKey::Rsa(k) => rsa::RsaPublicKey::from_pkcs1_der(&k.public_key())
                .ok()
                .and_then(|p| p.to_public_key_der().ok())
                .ok_or(DkimError::UnsupportedKey)?
                .into_vec(),
            AuthKey::Ed25519(k) => k.public_key(),
        };
        Ok(Self {
            domain,
            selector,
            algorithm,
            private_pem: SecretString::new(pem),
            public_key,
        })
    }

    /// The private key as PEM, for the store.
    pub fn private_pem(&self) -> &SecretString {
        &self.private_pem
    }

    /// The TXT record the domain's owner must publish.
    pub fn dns_record(&self) -> DnsRecord {
        DnsRecord {
            name: format!("{}._domainkey.{}", self.selector, self.domain),
            value: format!(
                "v=DKIM1; k={}; p={}",
                self.algorithm.dns_k(),
                base64::engine::general_purpose::STANDARD.encode(&self.public_key)
            ),
        }
    }
}

/// Signs messages with one key, parsed once.
pub struct Signer {
    key: AuthKey,
    algorithm: KeyAlgorithm,
    template: Signature,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.template.d)
            .field("selector", &self.template.s)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(key: &DkimKey) -> Result<Self, DkimError> {
        let (parsed, algorithm) = parse_pem(key.private_pem.expose())?;
        let template = Signature {
            v: 1,
            a: parsed.algorithm(),
            d: key.domain.clone(),
            s: key.selector.clone(),
            ch: Canonicalization::Relaxed,
            cb: Canonicalization::Relaxed,
            ..Default::default()
        };
        Ok(Self {
            key: parsed,
            algorithm,
            template,
        })
    }

    pub fn domain(&self) -> &str {
        &self.template.d
    }

    pub fn selector(&self) -> &str {
        &self.template.s
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The message with a `DKIM-Signature` header prepended and every line
    /// ending made CRLF (the form it travels in, and the form signed).
    /// `now` is Unix seconds, written as `t=`.
    pub fn sign(&self, message: &[u8], now: i64) -> Result<Vec<u8>, DkimError> {
        let message = crlf(message);
        let mut out = Vec::with_capacity(message.len() + 512);
        self.write_header(&message, now, &mut out)?;
        out.extend_from_slice(&message);
        Ok(out)
    }

    /// Only the `DKIM-Signature` header field (ending in CRLF), for callers
    /// that stream the message and would rather not copy it. The message
    /// must be sent with CRLF line endings (SMTP requires them anyway).
    pub fn signature_header(&self, message: &[u8], now: i64) -> Result<Vec<u8>, DkimError> {
        let mut out = Vec::with_capacity(512);
        self.write_header(message, now, &mut out)?;
        Ok(out)
    }

    fn write_header(&self, message: &[u8], now: i64, out: &mut Vec<u8>) -> Result<(), DkimError> {
        let fields = Fields::split(message)?;
        let mut sig = self.template.clone();
        sig.h = headers_to_sign(&fields.headers)?;
        // mail-auth puts every instance found in `h=`, bottom-up, then the
        // names it did not find: the second `From` is one of those, which
        // is what oversigning means.
        let (_, headers, signed, body) = sig.canonicalize(fields);
        sig.h = signed;
        sig.bh = self.key.hash(body).as_ref().to_vec();
        sig.t = u64::try_from(now).unwrap_or(0);
        sig.b = self
            .key
            .sign(SigningInput {
                headers,
                signature: &sig,
            })
            .map_err(DkimError::Crypto)?;
        sig.write(out, true);
        Ok(())
    }
}

/// Sign one message (parses the key each call: keep a [`Signer`] instead
/// when signing more than one).
pub fn sign(message: &[u8], key: &DkimKey, now: i64) -> Result<Vec<u8>, DkimError> {
    Signer::new(key)?.sign(message, now)
}

/// What the signature covers: the canonical signed headers, then the
/// canonical `DKIM-Signature` header itself with an empty `b=`.
struct SigningInput<'a, H> {
    headers: H,
    signature: &'a Signature,
}

impl<H: Writable> Writable for SigningInput<'_, H> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

/// The `h=` template for this message: the listed headers it has, then
/// `From` again.
fn headers_to_sign(fields: &[(&[u8], &[u8])]) -> Result<Vec<String>, DkimError> {
    let mut present = [false; SIGNED_HEADERS.len()];
    for (name, _) in fields {
        if let Some(i) = SIGNED_HEADERS
            .iter()
            .position(|h| h.as_bytes().eq_ignore_ascii_case(name))
        {
            present[i] = true;
        }
    }
    if !present[0] {
        return Err(DkimError::NoFrom);
    }
    let mut h: Vec<String> = SIGNED_HEADERS
        .iter()
        .zip(present)
        .filter(|(_, p)| *p)
        .map(|(h, _)| (*h).to_string())
        .collect();
    h.push("From".to_string());
    Ok(h)
}

/// The header fields of a message (name; value from after the colon
/// through the line break, folded lines included) and its body, in the
/// shape mail-auth's canonicaliser reads.
struct Fields<'a> {
    headers: Vec<(&'a [u8], &'a [u8])>,
    next: usize,
    body: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Accepts CRLF or bare LF. A line that is neither a field, a
    /// continuation, nor the blank line ending the header is refused rather
    /// than signed in some guessed way (the accept path refuses it too).
    fn split(message: &'a [u8]) -> Result<Self, DkimError> {
        let line_end = |from: usize| {
            message[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(message.len(), |p| from + p + 1)
        };
        let mut headers = Vec::new();
        let mut i = 0;
        while i < message.len() {
            let rest = &message[i..];
            if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
                i += if rest[0] == b'\r' { 2 } else { 1 };
                break;
            }
            let first = line_end(i);
            let colon = message[i..first]
                .iter()
                .position(|&b| b == b':')
                .filter(|&c| c > 0 && !matches!(rest[0], b' ' | b'\t'))
                .ok_or(DkimError::BadHeader(headers.len() + 1))?;
            let mut end = first;
            while end < message.len() && matches!(message[end], b' ' | b'\t') {
                end = line_end(end);
            }
            headers.push((&message[i..i + colon], &message[i + colon + 1..end]));
            i = end;
        }
        Ok(Self {
            headers,
            next: 0,
            body: &message[i.min(message.len())..],
        })
    }
}

impl<'a> HeaderStream<'a> for Fields<'a> {
    fn next_header(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let h = self.headers.get(self.next).copied();
        self.next += 1;
        h
    }

    fn body(&mut self) -> &'a [u8] {
        self.body
    }
}

fn parse_pem(pem: &str) -> Result<(AuthKey, KeyAlgorithm), DkimError> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(DkimError::Pem)?;
    match der {
        PrivateKeyDer::Pkcs1(der) => rsa_key(PrivateKeyDer::Pkcs1(der)),
        PrivateKeyDer::Pkcs8(der) => {
            let bytes = der.secret_pkcs8_der();
            rsa_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes))).or_else(|_| {
                // PKCS#8 v2 carries the public key too, and it is checked
                // against the private one; v1 (what OpenSSL writes) does
                // not, and the public key is derived.
                Ed25519Key::from_pkcs8_der(bytes)
                    .or_else(|_| Ed25519Key::from_pkcs8_maybe_unchecked_der(bytes))
                    .map(|k| (AuthKey::Ed25519(k), KeyAlgorithm::Ed25519))
                    .map_err(|_| DkimError::UnsupportedKey)
            })
        }
        _ => Err(DkimError::UnsupportedKey),
    }
}

fn rsa_key(der: PrivateKeyDer<'_>) -> Result<(AuthKey, KeyAlgorithm), DkimError> {
    RsaKey::<Sha256>::from_key_der(der)
        .map(|k| (AuthKey::Rsa(k), KeyAlgorithm::Rsa2048))
        .map_err(|_| DkimError::UnsupportedKey)
}

/// A lowercased host-name-like string (letters, digits, hyphens; labels of
/// 1 to 63 characters not starting or ending with a hyphen), or `None`.
/// The domain (at least two labels) and the selector, lowercased, or why
/// either is not a DNS name.
fn check_names(domain: &str, selector: &str) -> Result<(String, String), DkimError> {
    let d = check_name(domain).ok_or_else(|| DkimError::InvalidDomain(domain.into()))?;
    if !d.contains('.') {
        return Err(DkimError::InvalidDomain(d));
    }
    let s = check_name(selector).ok_or_else(|| DkimError::InvalidSelector(selector.into()))?;
    Ok((d, s))
}

fn check_name(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(s)
}

/// The message with bare LFs turned into CRLF (borrowed when there are none).
fn crlf(message: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize| message[i] == b'\n' && (i == 0 || message[i - 1] != b'\r');
    if !(0..message.len()).any(bare) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    for (i, &b) in message.iter().enumerate() {
        if bare(i) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signers_can_be_shared_between_workers() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Signer>();
        send_sync::<DkimKey>();
    }

    #[test]
    fn names_are_checked_and_lowercased() {
        assert_eq!(
            check_name("Mail.Example.COM.").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(check_name("s2024-01").as_deref(), Some("s2024-01"));
        assert!(check_name("").is_none());
        assert!(check_name("a..b").is_none());
        assert!(check_name("-a.b").is_none());
        assert!(check_name("a b.c").is_none());
        assert!(check_name("exämple.com").is_none());
    }

    #[test]
    fn signed_header_list_oversigns_from_and_skips_absent() {
        let m = b"From: a@example.com\r\nSubject: x\r\nX-Other: y\r\n\r\nbody\r\n";
        let f = Fields::split(m).unwrap();
        assert_eq!(
            headers_to_sign(&f.headers).unwrap(),
            ["From", "Subject", "From"]
        );
        let f = Fields::split(b"To: a@example.com\r\n\r\nx").unwrap();
        assert!(matches!(
            headers_to_sign(&f.headers),
            Err(DkimError::NoFrom)
        ));
    }

    #[test]
    fn fields_split_like_rfc5322() {
        let m = b"A: 1\r\nB: 2\r\n  folded\r\n\tagain\r\nC:3\n\r\nbody\r\n\r\n";
        let f = Fields::split(m).unwrap();
        let h: Vec<_> = f.headers.iter().map(|(n, v)| (*n, *v)).collect();
        assert_eq!(
            h,
            [
                (&b"A"[..], &b" 1\r\n"[..]),
                (b"B", b" 2\r\n  folded\r\n\tagain\r\n"),
                (b"C", b"3\n"),
            ]
        );
        assert_eq!(f.body, b"body\r\n\r\n");
        let f = Fields::split(b"A: 1\n\nbody").unwrap();
        assert_eq!((f.headers.len(), f.body), (1, &b"body"[..]));
        let f = Fields::split(b"A: 1\r\n").unwrap();
        assert_eq!((f.headers.len(), f.body), (1, &b""[..]));
        assert!(matches!(
            Fields::split(b"A: 1\r\nno colon\r\n\r\n"),
            Err(DkimError::BadHeader(2))
        ));
        assert!(matches!(
            Fields::split(b" A: 1\r\n\r\n"),
            Err(DkimError::BadHeader(1))
        ));
    }

    #[test]
    fn bare_lf_becomes_crlf() {
        assert!(matches!(crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&crlf(b"a\nb\r\n\nc")[..], b"a\r\nb\r\n\r\nc");
        assert_eq!(&crlf(b"\n")[..], b"\r\n");
    }
}
