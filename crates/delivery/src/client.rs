//! The HTTP client that makes delivery attempts.
//!
//! One [`WebhookClient`] (one `reqwest::Client`, one connection pool) is
//! shared by every delivery of the process, so connections to a busy
//! receiver are kept alive and reused. It never follows a redirect (a 3xx
//! is recorded as it is and retried later), connects only to addresses the
//! [`AddressPolicy`] allows, gives every attempt a deadline, and reads at
//! most a bounded prefix of the response.
//!
//! [`WebhookClient::send`] does not fail: every outcome, a status or an
//! error class, comes back as an [`AttemptResult`] for the call log and the
//! retry policy.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use tidings_types::{Timestamp, WebhookSecret};
use tokio::time::Instant;

use crate::guard::{check_url, AddressPolicy, GuardedResolver, ResolveError, UrlError};
use crate::payload::Payload;
use crate::retry::{classify, RetryAfter, Verdict};
use crate::sign::{SignatureHeaders, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("tidings/", env!("CARGO_PKG_VERSION"));

/// Bytes of the response kept for the call log.
pub const SNIPPET_BYTES: usize = 1024;

/// How the client behaves. The defaults are those of production.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The whole attempt: connect, TLS, request, response headers and body.
    pub timeout: Duration,
    /// Which destinations may be reached.
    pub policy: AddressPolicy,
    /// Idle keep-alive connections kept per receiver host.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// The most response bytes read. Past it the client stops reading and
    /// closes the connection; below it the body is drained so the
    /// connection can be reused.
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(15),
            policy: AddressPolicy::default(),
            max_idle_per_host: 64,
            idle_timeout: Duration::from_secs(90),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// The client could not be built (e.g. the TLS backend failed to start).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not build the webhook HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Why an attempt got no HTTP response. The names from
/// [`as_str`](ErrorClass::as_str) are stable: they are stored in the call
/// log and shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// No complete response within the timeout.
    Timeout,
    /// The TCP connection failed (refused, reset, unreachable).
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The destination is refused by the address policy; no connection
    /// was made.
    Blocked,
    /// Anything else (an invalid URL, a protocol error, …).
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Dns,
        ErrorClass::Tls,
        ErrorClass::Blocked,
        ErrorClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Dns => "dns",
            ErrorClass::Tls => "tls",
            ErrorClass::Blocked => "blocked",
            ErrorClass::Other => "other",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the [`ErrorClass`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error class `{0}`")]
pub struct UnknownErrorClass(pub String);

impl FromStr for ErrorClass {
    type Err = UnknownErrorClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorClass(s.to_string()))
    }
}

/// Headers that a webhook's custom headers may not set: the signature
/// headers, and those that describe the request's framing or target.
pub const RESERVED_HEADERS: [&str; 13] = [
    HEADER_ID,
    HEADER_TIMESTAMP,
    HEADER_SIGNATURE,
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// A custom header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the `{0}` header is set by tidings and cannot be overridden")]
    Reserved(String),
    #[error("`{0}` is not a valid header name")]
    InvalidName(String),
    #[error("the value of the `{0}` header is not valid")]
    InvalidValue(String),
}

/// Validate a webhook's custom headers when it is created or changed.
/// [`WebhookClient::send`] skips any header that fails this.
pub fn check_custom_headers(headers: &BTreeMap<String, String>) -> Result<(), HeaderError> {
    headers
        .iter()
        .try_for_each(|(k, v)| custom_header(k, v).map(drop))
}

fn custom_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), HeaderError> {
    let header =
        HeaderName::from_str(name).map_err(|_| HeaderError::InvalidName(name.to_string()))?;
    if RESERVED_HEADERS.contains(&header.as_str()) {
        return Err(HeaderError::Reserved(header.as_str().to_string()));
    }
    let value =
        HeaderValue::from_str(value).map_err(|_| HeaderError::InvalidValue(name.to_string()))?;
    Ok((header, value))
}

/// Everything one attempt sends.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub payload: Payload,
    pub signature: SignatureHeaders,
    /// The webhook's custom headers.
    pub headers: BTreeMap<String, String>,
}

impl OutgoingRequest {
    /// Sign `payload` as message `msg_id` at `timestamp` (Unix seconds)
    /// with `secrets`, and attach the webhook's custom headers.
    pub fn new(
        payload: Payload,
        msg_id: &str,
        timestamp: i64,
        secrets: &[&WebhookSecret],
        headers: BTreeMap<String, String>,
    ) -> Self {
        let signature = SignatureHeaders::new(msg_id, timestamp, &payload.signed, secrets);
        OutgoingRequest {
            payload,
            signature,
            headers,
        }
    }
}

/// The outcome of one attempt, as recorded in the call log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The response status, when a response came back.
    pub status: Option<u16>,
    /// Why no response came back.
    pub error: Option<ErrorClass>,
    /// The error in words, for the call log.
    pub detail: Option<String>,
    /// From just before connecting to the end of reading the response.
    pub duration: Duration,
    /// The first [`SNIPPET_BYTES`] of the response body, lossy UTF-8.
    pub response_snippet: String,
    /// The response's `Retry-After`, if it had a valid one.
    pub retry_after: Option<RetryAfter>,
}

impl AttemptResult {
    fn failed(error: ErrorClass, detail: String, duration: Duration) -> Self {
        AttemptResult {
            status: None,
            error: Some(error),
            detail: Some(detail),
            duration,
            response_snippet: String::new(),
            retry_after: None,
        }
    }

    /// What this outcome means for the delivery; `now` resolves a
    /// `Retry-After` date.
    pub fn verdict(&self, now: Timestamp) -> Verdict {
        classify(self.status, self.retry_after, now)
    }
}

/// The shared webhook HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
}

impl WebhookClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // A proxy would resolve the receiver's name itself, out of the guard's reach.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(config.policy)))
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.max_idle_per_host)
            .pool_idle_timeout(config.idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(ClientError::Build)?;
        Ok(WebhookClient {
            http,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Make one attempt. Never fails: errors are classified in the result.
    pub async fn send(&self, req: OutgoingRequest) -> AttemptResult {
        let started = Instant::now();
        let Payload {
            method,
            url,
            content_type,
            body,
            ..
        } = req.payload;

        // reqwest does not resolve literal IPs, so check them (and the
        // rest of the URL) here; names are checked by the resolver.
        if let Err(e) = check_url(&url, &self.config.policy) {
            let class = match e {
                UrlError::BlockedAddress(_) | UrlError::BlockedHost { .. } => ErrorClass::Blocked,
                _ => ErrorClass::Other,
            };
            return AttemptResult::failed(class, e.to_string(), started.elapsed());
        }

        // Room for ours and the custom ones up front: growing a HeaderMap
        // rehashes it, and this runs for every delivery.
        let mut headers = HeaderMap::with_capacity(4 + req.headers.len());
        for (name, value) in &req.headers {
            if let Ok((name, value)) = custom_header(name, value) {
                headers.append(name, value);
            }
        }
        let sig = &req.signature;
        for (name, value) in [
            (HEADER_ID, HeaderValue::from_str(&sig.id)),
            (HEADER_TIMESTAMP, Ok(HeaderValue::from(sig.timestamp))),
            (HEADER_SIGNATURE, HeaderValue::from_str(&sig.signature)),
        ] {
            match value {
                Ok(v) => {
                    headers.insert(name, v);
                }
                Err(_) => {
                    let detail = format!("the `{name}` header value is not valid");
                    return AttemptResult::failed(ErrorClass::Other, detail, started.elapsed());
                }
            }
        }
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }

        let sent = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                return AttemptResult::failed(classify_error(&e), describe(&e), started.elapsed())
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        let snippet = read_snippet(&mut response, self.config.max_response_bytes).await;
        AttemptResult {
            status: Some(status),
            error: None,
            detail: None,
            duration: started.elapsed(),
            response_snippet: snippet,
            retry_after,
        }
    }
}

/// Read at most `cap` bytes of the body, keeping the first
/// [`SNIPPET_BYTES`]. An error while reading (a reset, the deadline) only
/// ends the snippet early: the status has already decided the outcome.
async fn read_snippet(response: &mut reqwest::Response, cap: usize) -> String {
    let mut kept = Vec::with_capacity(SNIPPET_BYTES);
    let mut read = 0usize;
    let mut cut = false;
    while read < cap {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) => break,
        };
        read = read.saturating_add(chunk.len());
        let room = SNIPPET_BYTES - kept.len();
        if chunk.len() > room {
            cut = true;
        }
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    lossy_prefix(&kept, cut)
}

/// Lossy UTF-8 of `bytes`; when the bytes were `cut` from a longer body, a
/// character split by the cut is dropped rather than shown as U+FFFD.
fn lossy_prefix(bytes: &[u8], cut: bool) -> String {
    let mut end = bytes.len();
    if cut {
        for back in 1..=bytes.len().min(3) {
            let b = bytes[bytes.len() - back];
            if b < 0x80 {
                break;
            }
            if b >= 0xc0 {
                let width = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf4 => 4,
                    _ => 0, // not a lead byte: invalid, shown as such
                };
                if width > back {
                    end = bytes.len() - back;
                }
                break;
            }
        }
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Every error in `err`'s chain, including the inner error of an
/// `io::Error` (which `io::Error::source` skips).
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            // `io::Error::source` is the inner error's source: go through the inner one.
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

fn classify_error(err: &reqwest::Error) -> ErrorClass {
    for e in chain(err) {
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            return match r {
                ResolveError::Blocked { .. } => ErrorClass::Blocked,
                ResolveError::Lookup { .. } | ResolveError::NoAddress { .. } => ErrorClass::Dns,
            };
        }
        if e.is::<rustls::Error>() {
            return ErrorClass::Tls;
        }
    }
    if err.is_timeout() {
        ErrorClass::Timeout
    } else if err.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Other
    }
}

/// The error chain in one line, without the URL (which the call log has).
fn describe(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let mut text = e.to_string();
        if let Some(url) = e.downcast_ref::<reqwest::Error>().and_then(|r| r.url()) {
            text = text
                .replace(&format!(" for url ({url})"), "")
                .replace(&format!(" ({url})"), "");
        }
        if !parts.contains(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
