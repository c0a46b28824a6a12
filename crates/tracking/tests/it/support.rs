//! Shared helpers: the keys and options every test uses, and a bridge to
//! Python's `email` package as an independent MIME parser.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;
use tidings_tracking::rewrite::{rewrite, RecipientTokens, RewriteOptions, Rewritten};
use tidings_tracking::{Claims, TokenKeys, TokenKind};

pub const BASE: &str = "https://t.example.com";
pub const ACCOUNT: i64 = 7;
pub const MESSAGE: i64 = 90_210;
pub const RECIPIENT: i64 = 3;

pub fn keys() -> TokenKeys {
    TokenKeys::new((1, [42u8; 32]), vec![]).unwrap()
}

pub fn opts() -> RewriteOptions {
    RewriteOptions::new(BASE.parse().unwrap())
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn run(raw: &[u8], opts: &RewriteOptions) -> Rewritten {
    let keys = keys();
    let tokens = RecipientTokens {
        keys: &keys,
        account_id: ACCOUNT,
        message_id: MESSAGE,
        recipient_id: RECIPIENT,
    };
    rewrite(raw, opts, &tokens).expect("rewrite")
}

/// Every tracking URL of `kind` ("o", "c", "u") in `text`, in order, with
/// the claims its token verifies to.
pub fn tracking_urls(text: &str, kind: &str) -> Vec<(String, Claims)> {
    let prefix = format!("{BASE}/{kind}/");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(p) = rest.find(&prefix) {
        let tail = &rest[p + prefix.len()..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        let token = &tail[..len];
        let claims = keys()
            .verify(token)
            .unwrap_or_else(|e| panic!("{token}: {e}"));
        assert_eq!(
            (claims.account_id, claims.message_id, claims.recipient_id),
            (ACCOUNT, MESSAGE, RECIPIENT)
        );
        out.push((format!("{prefix}{token}"), claims));
        rest = &tail[len..];
    }
    out
}

/// The click link indices in `text`, in order.
pub fn click_indices(text: &str) -> Vec<u32> {
    tracking_urls(text, "c")
        .into_iter()
        .map(|(_, c)| match c.kind {
            TokenKind::Click { link_index } => link_index,
            k => panic!("a click URL with a {k:?} token"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct PyMessage {
    pub headers: Vec<(String, String)>,
    pub defects: Vec<String>,
    pub parts: Vec<PyPart>,
}

impl PyMessage {
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn part(&self, content_type: &str) -> &PyPart {
        self.parts
            .iter()
            .find(|p| p.content_type == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {:?}", self.parts))
    }

    pub fn leaves(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter(|p| !p.multipart)
            .map(|p| p.content_type.as_str())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct PyPart {
    pub content_type: String,
    pub multipart: bool,
    pub charset: Option<String>,
    pub disposition: Option<String>,
    pub filename: Option<String>,
    pub cte: Option<String>,
    pub defects: Vec<String>,
    /// The decoded body, hex.
    pub payload_hex: Option<String>,
    /// For text parts: the body decoded with its charset.
    pub text: Option<String>,
}

impl PyPart {
    pub fn payload(&self) -> Vec<u8> {
        let hex = self.payload_hex.as_deref().expect("a leaf part");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().expect("a text part")
    }
}

const PARSE: &str = r#"
import sys, json, email, email.policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
def leaf(p):
    d = {"content_type": p.get_content_type(), "multipart": p.is_multipart(),
         "charset": p.get_content_charset(), "disposition": p.get_content_disposition(),
         "filename": p.get_filename(), "cte": p.get("Content-Transfer-Encoding"),
         "defects": [type(x).__name__ for x in p.defects], "payload_hex": None, "text": None}
    if not p.is_multipart():
        d["payload_hex"] = (p.get_payload(decode=True) or b"").hex()
        if p.get_content_maintype() == "text":
            d["text"] = p.get_content()
    return d
out = {"headers": [[k, str(v)] for k, v in msg.items()],
       "defects": [type(x).__name__ for x in msg.defects],
       "parts": [leaf(p) for p in msg.walk()]}
print(json.dumps(out))
"#;

/// Parse with Python's `email` package (policy=default).
pub fn python(raw: &[u8]) -> PyMessage {
    let mut child = Command::new(tidings_testkit::python::interpreter())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peers' python");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python's JSON")
}

/// The raw bytes between the `n`-th and the next line starting with
/// `--boundary` (a test-side splitter, independent of the crate's).
pub fn raw_part<'a>(msg: &'a [u8], boundary: &str, n: usize) -> &'a [u8] {
    let delim = format!("\n--{boundary}");
    let hay = msg;
    let positions: Vec<usize> = hay
        .windows(delim.len())
        .enumerate()
        .filter(|(_, w)| *w == delim.as_bytes())
        .map(|(i, _)| i + 1)
        .collect();
    let start = positions[n];
    let end = positions[n + 1];
    &msg[start..end]
}

/// `html` without `<a …>` and `<area …>` start tags and without the pixel:
/// what must be identical before and after rewriting.
pub fn without_link_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    loop {
        let lower = rest.to_ascii_lowercase();
        let next = [
            "<a ",
            "<a\t",
            "<a\n",
            "<area ",
            &format!("<img src=\"{BASE}/o/"),
        ]
        .iter()
        .filter_map(|pat| lower.find(pat))
        .min();
        match next {
            Some(p) => {
                out.push_str(&rest[..p]);
                let end = rest[p..].find('>').map_or(rest.len(), |e| p + e + 1);
                rest = &rest[end..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// All `<!-- … -->` comments, in order.
pub fn comments(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(p) = rest.find("<!--") {
        let end = rest[p + 4..]
            .find("-->")
            .map_or(rest.len(), |e| p + 4 + e + 3);
        out.push(&rest[p..end]);
        rest = &rest[end..];
    }
    out
}
