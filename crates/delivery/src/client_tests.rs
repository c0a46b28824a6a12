//! The client against a real HTTP server on 127.0.0.1, port 0.

use super::*;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::TimeZone;
use http::header::LOCATION;
use http::StatusCode;
use tidings_types::{AccountId, Event, EventId, EventType, WebhookFormat, WebhookSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::guard::AddressPolicy;

/// A request as the receiver saw it.
#[derive(Debug)]
struct Seen {
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Shared {
    seen: mpsc::UnboundedSender<Seen>,
    served: Arc<AtomicUsize>,
}

struct Receiver {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    served: Arc<AtomicUsize>,
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The next request the receiver got, waiting for it.
    async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("the receiver got no request in time")
            .expect("the receiver stopped")
    }
}

async fn spawn_receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, seen) = mpsc::unbounded_channel();
    let served = Arc::new(AtomicUsize::new(0));
    let shared = Shared {
        seen: tx,
        served: served.clone(),
    };
    let app = axum::Router::new().fallback(handle).with_state(shared);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { addr, seen, served }
}

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let _ = shared.seen.send(Seen {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    });
    match path.as_str() {
        "/ok" => (StatusCode::OK, "fine").into_response(),
        "/redirect" => (StatusCode::FOUND, [(LOCATION, "/ok")], "moved").into_response(),
        "/busy" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "120")],
            "busy",
        )
            .into_response(),
        "/slow-down" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, "Wed, 01 Jan 2031 00:00:00 GMT")],
        )
            .into_response(),
        "/hang" => std::future::pending::<Response>().await,
        "/huge" => {
            let served = shared.served.clone();
            let chunks = futures::stream::repeat_with(move || {
                served.fetch_add(8192, Ordering::SeqCst);
                Ok::<_, Infallible>(Bytes::from_static(&[b'x'; 8192]))
            });
            Body::from_stream(chunks).into_response()
        }
        "/utf8" => format!("a{}", "é".repeat(600)).into_response(),
        p => match p
            .strip_prefix("/status/")
            .and_then(|c| c.parse::<u16>().ok())
        {
            Some(code) => (
                StatusCode::from_u16(code).unwrap(),
                format!("status {code}"),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

const LOOPBACK: AddressPolicy = AddressPolicy {
    allow_loopback: true,
    allow_private: false,
};

fn client_with(timeout: Duration, policy: AddressPolicy) -> WebhookClient {
    WebhookClient::new(ClientConfig {
        timeout,
        policy,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn client() -> WebhookClient {
    client_with(Duration::from_secs(10), LOOPBACK)
}

fn sample_event() -> Event {
    let data = serde_json::json!({"email": "ann@example.com", "tags": ["a", "b"]});
    Event {
        seq: 1,
        id: EventId::new(),
        account_id: AccountId::new(),
        event_type: EventType::Sent,
        timestamp: chrono::Utc::now(),
        data: data.as_object().unwrap().clone(),
    }
}

fn settings(url: &str, format: WebhookFormat) -> WebhookSettings {
    WebhookSettings {
        url: url.parse().unwrap(),
        event_types: vec![EventType::Sent],
        format,
        fields: None,
        headers: BTreeMap::new(),
        description: None,
        max_in_flight: 4,
        max_per_second: None,
        batch: None,
    }
}

/// A signed request for one event, and the secret that signed it.
fn request_with(
    url: &str,
    format: WebhookFormat,
    headers: BTreeMap<String, String>,
) -> (OutgoingRequest, WebhookSecret) {
    let event = sample_event();
    let payload = crate::payload::build(&[&event], &settings(url, format)).unwrap();
    let secret = WebhookSecret::generate();
    let now = chrono::Utc::now().timestamp();
    let req = OutgoingRequest::new(payload, &event.id.to_string(), now, &[&secret], headers);
    (req, secret)
}

fn request(url: &str) -> OutgoingRequest {
    request_with(url, WebhookFormat::Json, BTreeMap::new()).0
}

fn verify(secret: &WebhookSecret, signed: &[u8], headers: &HeaderMap) {
    standardwebhooks::Webhook::new(&secret.expose())
        .unwrap()
        .verify(signed, headers)
        .expect("the official verifier accepts the delivery");
}

#[tokio::test]
async fn delivers_signed_json_that_the_official_verifier_accepts() {
    let mut rx = spawn_receiver().await;
    let (req, secret) = request_with(&rx.url("/ok"), WebhookFormat::Json, BTreeMap::new());
    let expected_body = req.payload.body.clone();
    let expected_id = req.signature.id.clone();
    let result = client().send(req).await;
    assert_eq!(result.status, Some(200));
    assert_eq!(result.error, None);
    assert_eq!(result.detail, None);
    assert_eq!(result.response_snippet, "fine");
    assert_eq!(result.retry_after, None);
    assert_eq!(result.verdict(chrono::Utc::now()), Verdict::Delivered);

    let seen = rx.next().await;
    assert_eq!(seen.method, http::Method::POST);
    assert_eq!(seen.body, expected_body);
    assert_eq!(seen.headers[CONTENT_TYPE], "application/json");
    assert_eq!(seen.headers[http::header::USER_AGENT], USER_AGENT);
    assert!(USER_AGENT.starts_with("tidings/"));
    assert_eq!(seen.headers[HEADER_ID], expected_id.as_str());
    verify(&secret, &seen.body, &seen.headers);
}

#[tokio::test]
async fn get_format_signs_the_query_string_as_sent() {
    let mut rx = spawn_receiver().await;
    let url = rx.url("/ok?token=a%2Fb+c");
    let (req, secret) = request_with(&url, WebhookFormat::Get, BTreeMap::new());
    let result = client().send(req).await;
    assert_eq!(result.status, Some(200));
    let seen = rx.next().await;
    assert_eq!(seen.method, http::Method::GET);
    assert!(seen.body.is_empty());
    assert!(!seen.headers.contains_key(CONTENT_TYPE));
    let query = seen.uri.query().unwrap();
    assert!(
        query.starts_with("token=a%2Fb+c&event=sent&event_id=evt_"),
        "{query}"
    );
    verify(&secret, query.as_bytes(), &seen.headers);
}

#[tokio::test]
async fn form_format_is_posted_urlencoded() {
    let mut rx = spawn_receiver().await;
    let (req, secret) = request_with(&rx.url("/ok"), WebhookFormat::Form, BTreeMap::new());
    assert_eq!(client().send(req).await.status, Some(200));
    let seen = rx.next().await;
    assert_eq!(
        seen.headers[CONTENT_TYPE],
        "application/x-www-form-urlencoded"
    );
    let text = std::str::from_utf8(&seen.body).unwrap();
    assert!(
        text.contains("&email=ann%40example.com&tags=a%2Cb"),
        "{text}"
    );
    verify(&secret, &seen.body, &seen.headers);
}

#[tokio::test]
async fn error_statuses_are_recorded_with_their_verdicts() {
    let rx = spawn_receiver().await;
    let c = client();
    let now = chrono::Utc::now();
    for (code, verdict) in [
        (204, Verdict::Delivered),
        (400, Verdict::Retry { after: None }),
        (404, Verdict::Retry { after: None }),
        (410, Verdict::Gone),
        (500, Verdict::Retry { after: None }),
        (502, Verdict::Retry { after: None }),
    ] {
        let result = c.send(request(&rx.url(&format!("/status/{code}")))).await;
        assert_eq!(result.status, Some(code));
        assert_eq!(result.error, None);
        assert_eq!(result.verdict(now), verdict, "{code}");
        if code != 204 {
            assert_eq!(result.response_snippet, format!("status {code}"));
        }
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut rx = spawn_receiver().await;
    let result = client().send(request(&rx.url("/redirect"))).await;
    assert_eq!(result.status, Some(302));
    assert_eq!(result.response_snippet, "moved");
    assert_eq!(
        result.verdict(chrono::Utc::now()),
        Verdict::Retry { after: None }
    );
    assert_eq!(rx.next().await.uri.path(), "/redirect");
    // The send is over, so a followed redirect would already be here.
    assert!(rx.seen.try_recv().is_err(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_holds_the_connection_times_out() {
    let mut rx = spawn_receiver().await;
    let c = client_with(Duration::from_millis(300), LOOPBACK);
    let result = c.send(request(&rx.url("/hang"))).await;
    assert_eq!(result.status, None);
    assert_eq!(
        result.error,
        Some(ErrorClass::Timeout),
        "{:?}",
        result.detail
    );
    assert!(result.duration >= Duration::from_millis(300));
    // It was the receiver that was slow: the request had arrived.
    assert_eq!(rx.next().await.uri.path(), "/hang");
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is closed now, so nothing listens on `port`.
    let result = client()
        .send(request(&format!("http://127.0.0.1:{port}/ok")))
        .await;
    assert_eq!(result.status, None);
    assert_eq!(
        result.error,
        Some(ErrorClass::Connect),
        "{:?}",
        result.detail
    );
    assert!(result.detail.is_some());
}

/// A listener that is never served; `accept` tells whether anyone connected.
fn idle_listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn assert_no_connection(l: &std::net::TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was made: {other:?}"),
    }
}

#[tokio::test]
async fn blocked_literal_address_is_refused_without_connecting() {
    let l = idle_listener();
    let port = l.local_addr().unwrap().port();
    let strict = client_with(Duration::from_secs(10), AddressPolicy::default());
    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://localhost:{port}/ok"),
    ] {
        let result = strict.send(request(&url)).await;
        assert_eq!(result.status, None);
        assert_eq!(result.error, Some(ErrorClass::Blocked), "{url}");
        assert!(result.detail.unwrap().contains("loopback"));
    }
    assert_no_connection(&l);
}

#[tokio::test]
async fn a_name_that_resolves_to_a_blocked_address_is_refused_at_connect() {
    // The machine's own name passes `check_url` (it is not `localhost`)
    // but resolves to a loopback or private address: the resolver must
    // refuse it, as it would a name rebound to 127.0.0.1 after creation.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let all = AddressPolicy {
        allow_loopback: true,
        allow_private: true,
    };
    let addrs = GuardedResolver::new(all).lookup(host).await.unwrap();
    assert!(
        addrs
            .iter()
            .all(|a| !AddressPolicy::default().allows(crate::guard::classify_ip(a.ip()))),
        "this test needs the host name to resolve to non-public addresses: {addrs:?}"
    );
    let l = idle_listener();
    let port = l.local_addr().unwrap().port();
    let url = format!("http://{host}:{port}/ok");
    check_url(&url.parse().unwrap(), &AddressPolicy::default()).unwrap();
    let strict = client_with(Duration::from_secs(10), AddressPolicy::default());
    let result = strict.send(request(&url)).await;
    assert_eq!(
        result.error,
        Some(ErrorClass::Blocked),
        "{:?}",
        result.detail
    );
    assert_no_connection(&l);
}

#[tokio::test]
async fn unresolvable_name_is_dns() {
    let result = client()
        .send(request("http://no-such-host.invalid/ok"))
        .await;
    assert_eq!(result.status, None);
    assert_eq!(result.error, Some(ErrorClass::Dns), "{:?}", result.detail);
}

#[tokio::test]
async fn a_failed_handshake_is_tls() {
    // A plain-text server answering a TLS ClientHello with HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        let _ = conn
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        // Keep the connection open: the client must decide on what it got.
        let _ = conn.read(&mut buf).await;
    });
    let result = client().send(request(&format!("https://{addr}/ok"))).await;
    assert_eq!(result.status, None);
    assert_eq!(result.error, Some(ErrorClass::Tls), "{:?}", result.detail);
}

#[tokio::test]
async fn custom_headers_are_sent_but_cannot_override_ours() {
    let mut rx = spawn_receiver().await;
    let headers: BTreeMap<String, String> = [
        ("Authorization", "Bearer s3cret"),
        ("X-Tenant", "acme"),
        ("webhook-signature", "v1,forged"),
        ("Webhook-Id", "msg_forged"),
        ("Content-Type", "text/plain"),
        ("Host", "evil.example"),
        ("bad name", "x"),
        ("X-Bad-Value", "a\nb"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (req, secret) = request_with(&rx.url("/ok"), WebhookFormat::Json, headers);
    let id = req.signature.id.clone();
    assert_eq!(client().send(req).await.status, Some(200));
    let seen = rx.next().await;
    assert_eq!(seen.headers["authorization"], "Bearer s3cret");
    assert_eq!(seen.headers["x-tenant"], "acme");
    assert_eq!(seen.headers[HEADER_ID], id.as_str());
    assert_eq!(seen.headers.get_all(HEADER_SIGNATURE).iter().count(), 1);
    assert_eq!(seen.headers[CONTENT_TYPE], "application/json");
    assert_eq!(
        seen.headers[http::header::HOST],
        rx.addr.to_string().as_str()
    );
    assert!(!seen.headers.contains_key("x-bad-value"));
    verify(&secret, &seen.body, &seen.headers);
}

#[test]
fn custom_headers_are_validated() {
    let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    assert_eq!(
        check_custom_headers(&one("Authorization", "Basic eA==")),
        Ok(())
    );
    assert_eq!(check_custom_headers(&BTreeMap::new()), Ok(()));
    for name in [
        "Webhook-Signature",
        "content-type",
        "HOST",
        "Transfer-Encoding",
    ] {
        assert_eq!(
            check_custom_headers(&one(name, "x")),
            Err(HeaderError::Reserved(name.to_ascii_lowercase()))
        );
    }
    assert!(matches!(
        check_custom_headers(&one("bad name", "x")),
        Err(HeaderError::InvalidName(_))
    ));
    assert!(matches!(
        check_custom_headers(&one("X-Ok", "line\r\nbreak")),
        Err(HeaderError::InvalidValue(_))
    ));
}

#[tokio::test]
async fn an_endless_response_body_is_capped() {
    let rx = spawn_receiver().await;
    let timeout = Duration::from_secs(60);
    let c = client_with(timeout, LOOPBACK);
    let result = c.send(request(&rx.url("/huge"))).await;
    assert_eq!(result.status, Some(200));
    assert_eq!(result.response_snippet.len(), SNIPPET_BYTES);
    assert!(result.response_snippet.bytes().all(|b| b == b'x'));
    // The body never ends: only the cap can have ended the attempt.
    assert!(result.duration < timeout, "{:?}", result.duration);
    let served = rx.served.load(Ordering::SeqCst);
    assert!(served < 64 << 20, "{served} bytes served");
}

#[tokio::test]
async fn the_snippet_does_not_split_a_character() {
    let rx = spawn_receiver().await;
    let result = client().send(request(&rx.url("/utf8"))).await;
    assert_eq!(result.response_snippet, format!("a{}", "é".repeat(511)));
}

#[tokio::test]
async fn retry_after_is_parsed_in_both_forms() {
    let rx = spawn_receiver().await;
    let c = client();
    let busy = c.send(request(&rx.url("/busy"))).await;
    assert_eq!(busy.status, Some(503));
    assert_eq!(
        busy.retry_after,
        Some(RetryAfter::Delay(Duration::from_secs(120)))
    );
    assert_eq!(
        busy.verdict(chrono::Utc::now()),
        Verdict::Retry {
            after: Some(Duration::from_secs(120))
        }
    );
    let slow = c.send(request(&rx.url("/slow-down"))).await;
    assert_eq!(slow.status, Some(429));
    let at = chrono::Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(slow.retry_after, Some(RetryAfter::At(at)));
    let now = at - chrono::Duration::seconds(90);
    assert_eq!(
        slow.verdict(now),
        Verdict::Retry {
            after: Some(Duration::from_secs(90))
        }
    );
}

#[tokio::test]
async fn an_unsupported_scheme_is_other() {
    let result = client().send(request("ftp://example.com/x")).await;
    assert_eq!(result.error, Some(ErrorClass::Other));
    assert!(result.detail.unwrap().contains("ftp"));
}

#[test]
fn error_class_names_are_stable() {
    let names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        ["timeout", "connect", "dns", "tls", "blocked", "other"]
    );
    for c in ErrorClass::ALL {
        assert_eq!(c.as_str().parse::<ErrorClass>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert!("Timeout".parse::<ErrorClass>().is_err());
}

#[test]
fn lossy_prefix_drops_only_a_character_split_by_the_cut() {
    let text = "aé€😀";
    let bytes = text.as_bytes(); // 1 + 2 + 3 + 4 bytes
    assert_eq!(lossy_prefix(bytes, false), text);
    assert_eq!(lossy_prefix(bytes, true), text);
    for (len, expected) in [(2, "a"), (4, "aé"), (5, "aé"), (7, "aé€"), (9, "aé€")] {
        assert_eq!(lossy_prefix(&bytes[..len], true), expected, "{len}");
    }
    // Without a cut, broken bytes are shown, not hidden.
    assert_eq!(lossy_prefix(&bytes[..2], false), "a\u{fffd}");
    assert_eq!(lossy_prefix(b"ok\xff", true), "ok\u{fffd}");
}
