//! DKIM signatures made by `tidings_mail::dkim`, verified by Python's
//! dkimpy (a separate implementation, the one behind many milters) and by
//! mail-auth's own verifier, with the DNS lookup answered by the key's
//! `dns_record()`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use tidings_mail::dkim::{sign, DkimError, DkimKey, DnsRecord, KeyAlgorithm, Signer};

const NOW: i64 = 1_764_000_000;

/// CRLF, folded headers (one folded with a tab, one with spaces), an
/// encoded-word subject, a multipart 8-bit UTF-8 body, whitespace at line
/// ends and trailing blank lines, and an unsigned header.
const MESSAGE: &[u8] = b"Return-Path: <b-xyz@bounces.example.com>\r\n\
From: \"Shop\" <shop@example.com>\r\n\
To: Ann <ann@example.org>,\r\n\tBob <bob@example.org>\r\n\
Subject: =?utf-8?q?Your_receipt_=E2=80=94_caf=C3=A9?=\r\n  and more\r\n\
Date: Tue, 25 Nov 2025 10:00:00 +0000\r\n\
Message-ID: <01jb7x@tidings.example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
List-Unsubscribe: <https://t.example.com/u/abc>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
X-Mailer: tidings\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 caf\xc3\xa9 \xf0\x9f\x98\x80   \r\n\
Total:\t42,00 \xe2\x82\xac \r\n\
--b1--\r\n\
\r\n\
\r\n\
\r\n";

fn rsa_fixture() -> DkimKey {
    DkimKey::from_pem(
        "example.com",
        "rsa1",
        include_str!("../fixtures/rsa2048-pkcs1.pem"),
    )
    .unwrap()
}

fn ed25519_fixture() -> DkimKey {
    DkimKey::from_pem(
        "example.com",
        "ed1",
        include_str!("../fixtures/ed25519-pkcs8.pem"),
    )
    .unwrap()
}

/// Both fixture keys and a freshly generated key of each algorithm.
fn all_keys() -> Vec<DkimKey> {
    static GENERATED: OnceLock<(DkimKey, DkimKey)> = OnceLock::new();
    let (rsa, ed) = GENERATED.get_or_init(|| {
        (
            DkimKey::generate("mail.example.net", "gen2025", KeyAlgorithm::Rsa2048).unwrap(),
            DkimKey::generate("mail.example.net", "gen2025e", KeyAlgorithm::Ed25519).unwrap(),
        )
    });
    vec![rsa_fixture(), ed25519_fixture(), rsa.clone(), ed.clone()]
}

// --- dkimpy ------------------------------------------------------------

const DKIMPY_VERIFY: &str = r#"
import logging, sys
import dkim
name, value = sys.argv[1], sys.argv[2].encode()
def dnsfunc(n, timeout=5):
    n = n.decode() if isinstance(n, bytes) else n
    return value if n.rstrip('.').lower() == name.lower() else None
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
ok = dkim.verify(sys.stdin.buffer.read(), logger=logging.getLogger('dkim'), dnsfunc=dnsfunc)
sys.exit(0 if ok else 1)
"#;

/// `Ok` when dkimpy says the message verifies; its debug log otherwise.
fn dkimpy(message: &[u8], record: &DnsRecord) -> Result<(), String> {
    let mut child = Command::new(tidings_testkit::python::interpreter_for("dkimpy"))
        .args(["-c", DKIMPY_VERIFY, &record.name, &record.value])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peers' python");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

// --- mail-auth ---------------------------------------------------------

/// A TXT "cache" holding the one record, so the verifier asks no DNS server.
struct OneRecord(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for OneRecord {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }
    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// mail-auth's result for each DKIM-Signature of the message.
fn mail_auth(message: &[u8], record: &DnsRecord) -> Vec<DkimResult> {
    let key = DomainKey::parse(record.value.as_bytes()).expect("mail-auth parses the record");
    let cache = OneRecord(HashMap::from([(
        format!("{}.", record.name).into_boxed_str(),
        Txt::DomainKey(Arc::new(key)),
    )]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let auth =
            MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default()).unwrap();
        let parsed = AuthenticatedMessage::parse(message).expect("parsable");
        auth.verify_dkim(Parameters::new(&parsed).with_txt_cache(&cache))
            .await
            .into_iter()
            .map(|o| o.result().clone())
            .collect()
    })
}

fn assert_verifies(message: &[u8], key: &DkimKey) {
    let record = key.dns_record();
    if let Err(log) = dkimpy(message, &record) {
        panic!(
            "dkimpy rejected the {:?} signature:\n{log}\n{}",
            key.algorithm,
            String::from_utf8_lossy(message)
        );
    }
    assert_eq!(
        mail_auth(message, &record),
        [DkimResult::Pass],
        "{:?}",
        key.algorithm
    );
}

fn assert_fails(message: &[u8], key: &DkimKey) {
    let record = key.dns_record();
    assert!(
        dkimpy(message, &record).is_err(),
        "dkimpy accepted {:?}",
        key.algorithm
    );
    let results = mail_auth(message, &record);
    assert_eq!(results.len(), 1);
    assert_ne!(
        results[0],
        DkimResult::Pass,
        "mail-auth accepted {:?}",
        key.algorithm
    );
}

/// The value of tag `name` in the (unfolded) DKIM-Signature header.
fn tag(signed: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(signed);
    let header_end = text.find("\r\n").unwrap();
    let mut end = header_end;
    while text[end + 2..].starts_with(['\t', ' ']) {
        end += 2 + text[end + 2..].find("\r\n").unwrap();
    }
    let header = text[..end].replace(['\r', '\n', '\t', ' '], "");
    let value = header
        .split(';')
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {header}"));
    value.to_string()
}

// --- tests -------------------------------------------------------------

#[test]
fn signatures_verify_with_dkimpy_and_mail_auth() {
    for key in all_keys() {
        let signed = sign(MESSAGE, &key, NOW).unwrap();
        assert!(signed.starts_with(b"DKIM-Signature: v=1; a="));
        assert!(signed.ends_with(MESSAGE), "the message itself is untouched");
        assert_verifies(&signed, &key);
    }
}

#[test]
fn tags_say_what_the_policy_says() {
    let signed = sign(MESSAGE, &rsa_fixture(), NOW).unwrap();
    assert_eq!(tag(&signed, "a"), "rsa-sha256");
    assert_eq!(tag(&signed, "c"), "relaxed/relaxed");
    assert_eq!(tag(&signed, "d"), "example.com");
    assert_eq!(tag(&signed, "s"), "rsa1");
    assert_eq!(tag(&signed, "t"), NOW.to_string());
    // Present listed headers bottom-up, From once more; not Return-Path,
    // X-Mailer, or the absent Cc, Reply-To and Content-Transfer-Encoding.
    assert_eq!(
        tag(&signed, "h"),
        "List-Unsubscribe-Post:List-Unsubscribe:Content-Type:MIME-Version:\
         Message-ID:Date:Subject:To:From:From"
    );
    let ed = sign(MESSAGE, &ed25519_fixture(), NOW).unwrap();
    assert_eq!(tag(&ed, "a"), "ed25519-sha256");
    for s in [&signed, &ed] {
        let text = String::from_utf8_lossy(s);
        assert!(!text.contains("; l=") && !text.contains("; x="));
        let header = &text[..text.find("\r\nReturn-Path").unwrap()];
        // Folded (mail-auth keeps the fixed tags on the first line, which
        // is why this allows 80 rather than RFC 5322's advised 78).
        assert!(header.lines().count() >= 4, "folded:\n{header}");
        assert!(header.lines().all(|l| l.len() <= 80), "folded:\n{header}");
    }
}

#[test]
fn a_changed_body_fails() {
    for key in all_keys() {
        let signed = sign(MESSAGE, &key, NOW).unwrap();
        let at = signed.windows(5).position(|w| w == b"Total").unwrap();
        let mut altered = signed.clone();
        altered[at + 7..at + 9].copy_from_slice(b"99");
        assert_fails(&altered, &key);
        // An appended line is a change too (no l= tag).
        let mut appended = signed.clone();
        appended.extend_from_slice(b"P.S. click here\r\n");
        assert_fails(&appended, &key);
    }
}

#[test]
fn a_changed_signed_header_or_an_added_from_fails() {
    for key in [rsa_fixture(), ed25519_fixture()] {
        let signed = sign(MESSAGE, &key, NOW).unwrap();
        let subject = String::from_utf8_lossy(&signed).replacen(
            "Subject: =?utf-8?q?Your_receipt",
            "Subject: =?utf-8?q?Our_receipt",
            1,
        );
        assert_fails(subject.as_bytes(), &key);
        // From is oversigned: a second From above the first breaks it.
        let mut two_froms = b"From: evil@example.net\r\n".to_vec();
        two_froms.extend_from_slice(&signed);
        assert_fails(&two_froms, &key);
    }
}

#[test]
fn relaxed_canonicalisation_survives_what_relays_do() {
    for key in [rsa_fixture(), ed25519_fixture()] {
        let signed = sign(MESSAGE, &key, NOW).unwrap();
        let text = String::from_utf8_lossy(&signed)
            // A relay refolds a header and changes whitespace runs...
            .replacen(
                "To: Ann <ann@example.org>,\r\n\tBob",
                "TO:   Ann <ann@example.org>, Bob",
                1,
            )
            // ...strips trailing spaces and the trailing blank lines...
            .replace("   \r\n", "\r\n")
            .replace("--b1--\r\n\r\n\r\n\r\n", "--b1--\r\n")
            // ...and prepends its trace header.
            .replacen(
                "DKIM-Signature",
                "Received: from x by y; now\r\nDKIM-Signature",
                1,
            );
        assert_verifies(text.as_bytes(), &key);
    }
}

#[test]
fn bare_lf_messages_are_signed_as_crlf() {
    let lf: Vec<u8> = String::from_utf8_lossy(MESSAGE)
        .replace("\r\n", "\n")
        .into_bytes();
    for key in [rsa_fixture(), ed25519_fixture()] {
        let signed = sign(&lf, &key, NOW).unwrap();
        assert!(!signed
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || signed[i - 1] != b'\r')));
        assert_verifies(&signed, &key);
        // The same bytes as signing the CRLF form.
        assert_eq!(signed, sign(MESSAGE, &key, NOW).unwrap());
    }
}

#[test]
fn one_signer_signs_many_messages() {
    let key = rsa_fixture();
    let signer = Signer::new(&key).unwrap();
    assert_eq!(
        (signer.domain(), signer.selector()),
        ("example.com", "rsa1")
    );
    assert_eq!(signer.algorithm(), KeyAlgorithm::Rsa2048);
    for i in 0..5 {
        let msg = format!("From: a@example.com\r\nSubject: n{i}\r\n\r\nbody {i}\r\n");
        let signed = signer.sign(msg.as_bytes(), NOW + i).unwrap();
        assert_eq!(tag(&signed, "t"), (NOW + i).to_string());
        assert_verifies(&signed, &key);
        let header = signer.signature_header(msg.as_bytes(), NOW + i).unwrap();
        assert!(header.ends_with(b"\r\n"));
        assert_eq!([&header[..], msg.as_bytes()].concat(), signed);
    }
}

#[test]
fn dns_records_carry_the_public_key_openssl_derives() {
    // The expected values come from `openssl pkey -pubout` on the fixtures.
    let rsa = rsa_fixture().dns_record();
    assert_eq!(rsa.name, "rsa1._domainkey.example.com");
    assert_eq!(
        rsa.value,
        format!(
            "v=DKIM1; k=rsa; p={}",
            include_str!("../fixtures/rsa2048-pkcs1.p.txt").trim()
        )
    );
    assert_eq!(rsa.character_strings().concat(), rsa.value);
    assert!(rsa.character_strings().iter().all(|s| s.len() <= 255));
    assert_eq!(rsa.character_strings().len(), 2);
    let ed = ed25519_fixture().dns_record();
    assert_eq!(ed.name, "ed1._domainkey.example.com");
    assert_eq!(
        ed.value,
        format!(
            "v=DKIM1; k=ed25519; p={}",
            include_str!("../fixtures/ed25519-pkcs8.p.txt").trim()
        )
    );
    assert_eq!(ed.character_strings(), [ed.value.as_str()]);
}

#[test]
fn generated_keys_round_trip_through_pem() {
    for key in &all_keys()[2..] {
        let again =
            DkimKey::from_pem(&key.domain, &key.selector, key.private_pem().expose()).unwrap();
        assert_eq!(again.algorithm, key.algorithm);
        assert_eq!(again.dns_record(), key.dns_record());
        assert!(key
            .private_pem()
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(
            !format!("{key:?}").contains("PRIVATE"),
            "the key never prints"
        );
    }
}

#[test]
fn bad_keys_names_and_messages_are_refused() {
    let pem = include_str!("../fixtures/ed25519-pkcs8.pem");
    assert!(matches!(
        DkimKey::from_pem("example.com", "s", "not a key"),
        Err(DkimError::Pem(_))
    ));
    let cert_like = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        DkimKey::from_pem("example.com", "s", cert_like),
        Err(DkimError::UnsupportedKey)
    ));
    // RFC 8301 retired keys under 1024 bits; ring signs only with 2048+.
    assert!(matches!(
        DkimKey::from_pem(
            "example.com",
            "s",
            include_str!("../fixtures/rsa1024-pkcs1.pem")
        ),
        Err(DkimError::UnsupportedKey)
    ));
    for domain in ["", "localhost", "exa mple.com", "-x.com", "münchen.de"] {
        assert!(
            matches!(
                DkimKey::from_pem(domain, "s", pem),
                Err(DkimError::InvalidDomain(_))
            ),
            "{domain}"
        );
    }
    for selector in ["", "a b", "a..b", "sel;x"] {
        assert!(
            matches!(
                DkimKey::from_pem("example.com", selector, pem),
                Err(DkimError::InvalidSelector(_))
            ),
            "{selector}"
        );
    }
    let key = DkimKey::from_pem("Example.COM.", "S1", pem).unwrap();
    assert_eq!(key.dns_record().name, "s1._domainkey.example.com");
    assert!(matches!(
        sign(b"To: a@example.com\r\n\r\nhi\r\n", &key, NOW),
        Err(DkimError::NoFrom)
    ));
    assert!(matches!(
        sign(b"From: a@example.com\r\ngarbage\r\n\r\nhi\r\n", &key, NOW),
        Err(DkimError::BadHeader(2))
    ));
}
