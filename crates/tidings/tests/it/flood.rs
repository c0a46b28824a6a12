//! Connection floods, bounded and on loopback only. One address
//! (127.0.0.1) opens far more connections than its share on every
//! listener and holds them idle; while it does, another address
//! (127.0.0.2: Linux routes all of 127/8 to the loopback interface) still
//! gets `/healthz`, follows a tracked link of a message delivered during
//! the flood, and submits a message over SMTP. Then more addresses fill
//! the HTTP listener to its total limit, and SMTP is still served. The
//! refusals are counted in `/metrics`, exactly. And the slowloris forms:
//! a partial request header, a stalled body; and the settings, from the
//! environment and checked.
//!
//! The limits are stated in [`limited`]: HTTP 300 in all and 100 per
//! address, each SMTP listener 40 and 10.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::tracking::find_url;

const HTTP_TOTAL: usize = 300;
const HTTP_PER_IP: usize = 100;
const SMTP_TOTAL: usize = 40;
const SMTP_PER_IP: usize = 10;

/// Connections the flooding address opens on each listener.
const HTTP_FLOOD: usize = 2000;
const SMTP_FLOOD: usize = 300;

fn limited(c: &mut tidings::Config) {
    c.http.max_connections = HTTP_TOTAL;
    c.http.max_connections_per_ip = HTTP_PER_IP;
    c.smtp.max_connections = SMTP_TOTAL;
    c.smtp.max_connections_per_ip = SMTP_PER_IP;
    c.inbound.max_connections = SMTP_TOTAL;
    c.inbound.max_connections_per_ip = SMTP_PER_IP;
}

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(DEADLINE, socket.connect(to))
        .await
        .expect("connected in time")
        .unwrap()
}

/// `n` idle connections from `from` to `to`, held by the caller.
async fn flood(from: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(connect_from(from, to).await);
    }
    held
}

/// The value of one series of `/metrics`, asked from 127.0.0.2.
async fn metric(http: &reqwest::Client, base: &str, series: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

fn refused(listener: &str, reason: &str) -> String {
    format!("tidings_connections_refused_total{{listener=\"{listener}\",reason=\"{reason}\"}}")
}

/// Wait until a series reads `want`.
async fn metric_reaches(http: &reqwest::Client, base: &str, series: &str, want: f64) {
    wait_until(series, DEADLINE, || async {
        (metric(http, base, series).await == want).then_some(())
    })
    .await;
}

/// Submit one message over SMTP (STARTTLS, AUTH) from 127.0.0.2.
async fn submit_from_another_address(smtp: SocketAddr, key: &str) {
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port}, source_address=("127.0.0.2", 0), timeout=20)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.login("apikey", "{key}")
msg = "From: app@sender.test\r\nTo: ok@example.test\r\nSubject: during the flood\r\n\r\nhi\r\n"
assert s.sendmail("app@sender.test", ["ok@example.test"], msg) == {{}}
s.quit()
"#,
        port = smtp.port()
    );
    let out = tokio::process::Command::new(tidings_testkit::python::interpreter())
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "submission during the flood failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a refused HTTP connection hears before it is closed.
async fn refusal(from: &str, to: SocketAddr) -> String {
    let mut s = connect_from(from, to).await;
    let mut got = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut got))
        .await
        .expect("closed in time")
        .unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_leaves_every_listener_to_the_others() {
    let mx = Mx::start();
    let t = mx.app(limited).await;
    let running = t.running.as_ref().unwrap();
    let (http_addr, smtp, inbound) = (
        running.addr,
        running.smtp_addr.unwrap(),
        running.inbound_addr.unwrap(),
    );
    let base = t.api.base.clone();
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    // Every HTTP request of the test comes from the other address, so the
    // flooding address holds nothing but its flood.
    let http = reqwest::Client::builder()
        .local_address(other)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = |path: &str| http.post(format!("{base}{path}")).bearer_auth(&t.api.key);
    let domain = api("/v1/domains")
        .json(&json!({"domain": "sender.test", "algorithm": "ed25519"}))
        .send()
        .await
        .unwrap();
    assert_eq!(domain.status(), 201);

    let started = Instant::now();
    let _http_flood = flood("127.0.0.1", http_addr, HTTP_FLOOD).await;
    let _smtp_flood = flood("127.0.0.1", smtp, SMTP_FLOOD).await;
    let _mx_flood = flood("127.0.0.1", inbound, SMTP_FLOOD).await;
    // Every connection past the address's share was refused, and only those.
    for (listener, n, share) in [
        ("http", HTTP_FLOOD, HTTP_PER_IP),
        ("submission", SMTP_FLOOD, SMTP_PER_IP),
        ("inbound", SMTP_FLOOD, SMTP_PER_IP),
    ] {
        metric_reaches(
            &http,
            &base,
            &refused(listener, "per_ip_limit"),
            (n - share) as f64,
        )
        .await;
    }
    let flooded = started.elapsed();
    // What is held: the flooding address's share, and on HTTP the other
    // address's keep-alive connection.
    for listener in ["submission", "inbound"] {
        let series = format!("tidings_connections_open{{listener=\"{listener}\"}}");
        assert_eq!(
            metric(&http, &base, &series).await,
            SMTP_PER_IP as f64,
            "{series}"
        );
    }
    let open = metric(&http, &base, "tidings_connections_open{listener=\"http\"}").await;
    assert!(
        (HTTP_PER_IP as f64 + 1.0..=HTTP_PER_IP as f64 + 2.0).contains(&open),
        "{open}"
    );
    let r = refusal("127.0.0.1", http_addr).await;
    assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
    assert!(
        r.contains(r#""code":"too_many_connections_from_address""#),
        "{r}"
    );

    // While the flood holds its connections, another address is served.
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let sent = api("/v1/messages")
        .json(&json!({
            "from": "app@sender.test", "to": "reader@example.test", "subject": "flood",
            "html": "<p><a href=\"https://example.com/during\">a link</a></p>",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let msg = wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().pop()
    })
    .await;
    let click = http.get(find_url(&msg, &base, "c")).send().await.unwrap();
    assert_eq!(click.status(), 303);
    assert_eq!(click.headers()["location"], "https://example.com/during");
    submit_from_another_address(smtp, &t.api.key).await;

    // More addresses fill the HTTP listener to its total: HTTP then turns
    // everyone away, and the SMTP listeners are untouched by it.
    let mut fill = Vec::new();
    for from in ["127.0.0.3", "127.0.0.4"] {
        fill.push(flood(from, http_addr, HTTP_PER_IP).await);
    }
    let r = refusal("127.0.0.5", http_addr).await;
    assert!(r.contains(r#""code":"too_many_connections""#), "{r}");
    submit_from_another_address(smtp, &t.api.key).await;
    wait_until("both submissions at the MX", DEADLINE, || async {
        (mx.messages().len() == 3).then_some(())
    })
    .await;
    // Room again once some let go; then the counts.
    drop(fill);
    wait_until("HTTP served again", DEADLINE, || async {
        let r = http.get(format!("{base}/healthz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    // The probe from 127.0.0.5, and the last few of the fill: the other
    // address's clients keep their connections alive in pools (one or two
    // each, as the requests above happened to need), and those took room
    // the fill then lacked.
    let total = metric(&http, &base, &refused("http", "total_limit")).await;
    assert!((1.0..=5.0).contains(&total), "{total}");
    let per_ip = (HTTP_FLOOD - HTTP_PER_IP + 1) as f64;
    assert_eq!(
        metric(&http, &base, &refused("http", "per_ip_limit")).await,
        per_ip
    );
    for listener in ["submission", "inbound"] {
        let series = refused(listener, "per_ip_limit");
        let want = (SMTP_FLOOD - SMTP_PER_IP) as f64;
        assert_eq!(metric(&http, &base, &series).await, want, "{series}");
        let series = refused(listener, "total_limit");
        assert_eq!(metric(&http, &base, &series).await, 0.0, "{series}");
    }
    eprintln!(
        "{} connections opened from one address, all but its share refused, in {flooded:?}",
        HTTP_FLOOD + 2 * SMTP_FLOOD
    );
    t.stop().await;
}

/// How long until the server closes `s`; what it said before.
async fn closed_after(s: &mut TcpStream) -> (Duration, String) {
    let start = Instant::now();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut got))
        .await
        .expect("closed in time");
    (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn a_partial_header_or_a_stalled_body_is_closed_after_its_timeout() {
    let t = InProcess::start(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.idle_timeout_secs = 2;
        c.webhooks.timeout_secs = 1;
    })
    .await;
    let addr = t.running.as_ref().unwrap().addr;

    let mut partial = connect_from("127.0.0.1", addr).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tidings\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = connect_from("127.0.0.1", addr).await;
    let (took, said) = closed_after(&mut partial).await;
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(!said.contains("200 OK"), "{said}");
    let (took, _) = closed_after(&mut silent).await;
    assert!(took < Duration::from_secs(2), "silent for {took:?}");

    // A keep-alive connection is closed once it has been idle as long.
    let mut kept = connect_from("127.0.0.1", addr).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: tidings\r\n\r\n")
        .await
        .unwrap();
    let (took, said) = closed_after(&mut kept).await;
    assert!(said.starts_with("HTTP/1.1 200 OK"), "{said}");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");

    // The headers came in time, the body stalls: the idle timeout.
    let mut stalled = connect_from("127.0.0.1", addr).await;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: tidings\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"from\":",
        t.api.key
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let (took, _) = closed_after(&mut stalled).await;
    assert!(took >= Duration::from_millis(1900), "closed after {took:?}");
    t.stop().await;
}

/// `tidings check-config` with these `TIDINGS_*` variables: its output,
/// and whether it succeeded.
fn check_config(env: &[(&str, &str)]) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("check-config")
        .env("TIDINGS_DATA_DIR", dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success())
}

#[test]
fn the_limits_are_set_from_the_environment_and_checked() {
    let (text, ok) = check_config(&[
        ("TIDINGS_HTTP__MAX_CONNECTIONS_PER_IP", "12"),
        ("TIDINGS_SMTP__AUTH_TIMEOUT_SECS", "7"),
        ("TIDINGS_INBOUND__MAIL_TIMEOUT_SECS", "9"),
    ]);
    assert!(ok, "{text}");
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cfg["http"]["max_connections_per_ip"], 12);
    assert_eq!(cfg["http"]["max_connections"], 4096);
    assert_eq!(cfg["http"]["header_read_timeout_secs"], 20);
    assert_eq!(cfg["smtp"]["auth_timeout_secs"], 7);
    assert_eq!(cfg["smtp"]["max_connections_per_ip"], 16);
    assert_eq!(cfg["inbound"]["mail_timeout_secs"], 9);
    assert_eq!(cfg["inbound"]["idle_timeout_secs"], 300);

    for (env, says) in [
        (
            ("TIDINGS_SMTP__MAX_CONNECTIONS_PER_IP", "300"),
            "smtp.max_connections_per_ip (300) is more than smtp.max_connections (256)",
        ),
        (
            ("TIDINGS_INBOUND__MAX_CONNECTIONS", "0"),
            "inbound.max_connections and inbound.max_connections_per_ip must be at least 1",
        ),
        (
            ("TIDINGS_HTTP__HEADER_READ_TIMEOUT_SECS", "0"),
            "http.header_read_timeout_secs must be at least 1",
        ),
        (
            ("TIDINGS_HTTP__IDLE_TIMEOUT_SECS", "10"),
            "http.idle_timeout_secs (10) must be more than webhooks.timeout_secs (15)",
        ),
    ] {
        let (text, ok) = check_config(&[env]);
        assert!(!ok && text.contains(says), "{env:?}: {text}");
    }
}
