//! `sending-load`: the load generators of the sending benchmarks
//! (`bench/sending/run.sh`, figures in `docs/benchmarks.md`, "Sending").
//!
//! - `smtp`: N messages over C concurrent SMTP sessions. Each session does
//!   EHLO, optionally STARTTLS and AUTH PLAIN, once, then sends its share
//!   of the messages one after another, pipelining MAIL, RCPT and DATA in
//!   one write (RFC 2920), the message and its final dot in another; a
//!   message counts when the server answered 250 to its final dot. Works
//!   against tidings (STARTTLS + AUTH) and Postfix (STARTTLS, no AUTH)
//!   alike, so both are measured with the same client.
//! - `http`: N raw messages (`message/rfc822`) posted to `/v1/messages`
//!   over C keep-alive HTTP/1.1 connections; a message counts on 202.
//! - `wait-sent`: watch a tidings database (read-only) until N recipients
//!   are `sent`, and time it.
//! - `blackhole`: a TCP listener that never accepts, so a smarthost that
//!   points at it takes connections and never greets: the outbound
//!   worker waits and does nothing, which isolates acceptance.
//!
//! The clock of `smtp` and `http` starts once every session is set up
//! (connected, TLS, AUTH) and stops at the last acknowledgement.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

mod smtp;

#[derive(Parser)]
#[command(
    name = "sending-load",
    about = "Load generators of the sending benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Submit messages over SMTP.
    Smtp(SmtpArgs),
    /// Submit raw messages over HTTP (POST /v1/messages).
    Http(HttpArgs),
    /// Wait until a tidings database has N sent recipients; time it.
    WaitSent(WaitArgs),
    /// Listen and never accept (a smarthost that never answers).
    Blackhole {
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Messages in all.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Size of each message, headers included, in bytes.
    #[arg(long, default_value_t = 10_240)]
    size: usize,
    /// Envelope and header sender.
    #[arg(long, default_value = "app@sender.test")]
    from: String,
    /// Recipients are `rcpt<N>@<domain>`.
    #[arg(long, default_value = "example.test")]
    rcpt_domain: String,
    /// Spread recipients over this many domains, `rcpt<N>@d<N mod K>.<domain>`
    /// (outbound concurrency is limited per recipient domain).
    #[arg(long, default_value_t = 1)]
    domains: usize,
    /// A name for the result line.
    #[arg(long, default_value = "run")]
    label: String,
    /// An HTML message (multipart/alternative) with this many links, which
    /// tidings' click tracking rewrites, instead of plain text without any.
    #[arg(long)]
    html_links: Option<usize>,
}

#[derive(Args)]
struct SmtpArgs {
    /// The server, e.g. 127.0.0.1:2587.
    #[arg(long)]
    addr: SocketAddr,
    #[command(flatten)]
    common: Common,
    /// Upgrade with STARTTLS after the first EHLO (certificate not checked).
    #[arg(long)]
    starttls: bool,
    /// AUTH PLAIN with `user:password` (after STARTTLS).
    #[arg(long)]
    auth: Option<String>,
    /// One command, one reply (as smtp-source) instead of pipelining
    /// MAIL, RCPT and DATA.
    #[arg(long)]
    no_pipelining: bool,
}

#[derive(Args)]
struct HttpArgs {
    /// The HTTP API, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// An API key.
    #[arg(long)]
    key: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct WaitArgs {
    /// The tidings database (`<data_dir>/tidings.db`), opened read-only.
    #[arg(long)]
    db: std::path::PathBuf,
    /// Sent recipients to wait for.
    #[arg(long)]
    count: u64,
    /// Start of the clock, Unix milliseconds (default: now).
    #[arg(long)]
    since_ms: Option<i64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    #[arg(long, default_value = "run")]
    label: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Blackhole { listen } = cli.cmd {
        let _l = std::net::TcpListener::bind(listen).context("binding the blackhole")?;
        println!("blackhole on {listen}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if let Cmd::WaitSent(a) = cli.cmd {
        return wait_sent(a);
    }
    // As many worker threads as cores, like any tokio client would use.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Smtp(a) => smtp::smtp(a).await,
            Cmd::Http(a) => http(a).await,
            _ => unreachable!(),
        }
    })
}

// ---------------------------------------------------------------- messages

/// The message body (shared by all messages) and the header template.
struct Corpus {
    body: Bytes,
    content_type: String,
    from: String,
    rcpt_domain: String,
    domains: usize,
}

impl Corpus {
    fn new(c: &Common) -> Corpus {
        match c.html_links {
            Some(links) => Self::html(c, links),
            None => Self::text(c),
        }
    }

    /// multipart/alternative: a short text part, then an HTML part with
    /// `links` links spread over table rows, up to `size` in all.
    fn html(c: &Common, links: usize) -> Corpus {
        let boundary = "=_bench_boundary_42";
        let mut rows = Vec::new();
        let row = |k: usize, link: bool| {
            let cell = "<td style=\"padding:8px 12px;font-family:Arial,sans-serif;font-size:14px;color:#333333\">";
            if link {
                format!("<tr>{cell}Item {k:03}: hand-thrown mug, stoneware, 350 ml</td>{cell}<a href=\"https://shop.example.com/orders/8841/items/{k}?utm_source=email&amp;utm_campaign=receipt\" style=\"color:#0a66c2\">View item</a></td></tr>\r\n")
            } else {
                format!("<tr>{cell}Item {k:03}: hand-thrown mug, stoneware, 350 ml</td>{cell}2 x 18.00 EUR</td></tr>\r\n")
            }
        };
        let head = format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
             Your order 8841 has shipped. Track it at https://shop.example.com/orders/8841\r\n\r\n\
             --{boundary}\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n\
             <html><body><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">\r\n"
        );
        let tail = format!("</table></body></html>\r\n\r\n--{boundary}--\r\n");
        let want = c.size.saturating_sub(400 + head.len() + tail.len());
        let (mut len, mut k) = (0, 0);
        while len < want {
            let r = row(k, k < links);
            len += r.len();
            rows.push(r);
            k += 1;
        }
        let body = format!("{head}{}{tail}", rows.concat());
        Corpus {
            body: Bytes::from(body),
            content_type: format!("multipart/alternative; boundary=\"{boundary}\""),
            from: c.from.clone(),
            rcpt_domain: c.rcpt_domain.clone(),
            domains: c.domains.max(1),
        }
    }

    fn text(c: &Common) -> Corpus {
        // Headers take about 330 bytes; the body fills up to `size`.
        let line = b"Thank you for your order. Your receipt follows; nothing to do here.\r\n";
        let want = c.size.saturating_sub(330);
        let mut body = Vec::with_capacity(want + line.len());
        let mut n = 0u32;
        while body.len() + line.len() <= want.max(line.len()) {
            n += 1;
            body.extend_from_slice(format!("{n:06} ").as_bytes());
            body.extend_from_slice(&line[..line.len() - 7]);
            body.extend_from_slice(b"\r\n");
        }
        Corpus {
            body: Bytes::from(body),
            content_type: "text/plain; charset=us-ascii".into(),
            from: c.from.clone(),
            rcpt_domain: c.rcpt_domain.clone(),
            domains: c.domains.max(1),
        }
    }

    fn rcpt(&self, i: usize) -> String {
        if self.domains > 1 {
            format!("rcpt{i}@d{}.{}", i % self.domains, self.rcpt_domain)
        } else {
            format!("rcpt{i}@{}", self.rcpt_domain)
        }
    }

    /// Message `i` (CRLF line ends, no line starts with a dot).
    fn message(&self, i: usize) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.body.len() + 512);
        m.extend_from_slice(
            format!(
                "From: Bench Shop <{from}>\r\n\
                 To: <{to}>\r\n\
                 Subject: Your receipt {i}\r\n\
                 Date: Tue, 25 Nov 2025 10:00:00 +0000\r\n\
                 Message-ID: <bench-{i}-{pid}@sender.test>\r\n\
                 MIME-Version: 1.0\r\n\
                 Content-Type: {ct}\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\
                 X-Bench: tidings-bench-sending\r\n\r\n",
                ct = self.content_type,
                from = self.from,
                to = self.rcpt(i),
                pid = std::process::id(),
            )
            .as_bytes(),
        );
        m.extend_from_slice(&self.body);
        m
    }
}

// ---------------------------------------------------------------- results

struct Outcome {
    ok: usize,
    refused: usize,
    latencies_us: Vec<u32>,
    last_refusal: Option<String>,
}

impl Outcome {
    /// Nothing sent yet, room for the latencies of a session's share of
    /// `total` messages.
    fn new(total: usize) -> Self {
        Self {
            ok: 0,
            refused: 0,
            latencies_us: Vec::with_capacity(total / 8),
            last_refusal: None,
        }
    }
}

fn report(kind: &str, c: &Common, sample_len: usize, elapsed: Duration, mut outs: Vec<Outcome>) {
    let ok: usize = outs.iter().map(|o| o.ok).sum();
    let refused: usize = outs.iter().map(|o| o.refused).sum();
    let mut lat: Vec<u32> = outs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.latencies_us))
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i] as f64 / 1000.0
    };
    let secs = elapsed.as_secs_f64();
    let rate = ok as f64 / secs;
    if let Some(r) = outs.iter().find_map(|o| o.last_refusal.clone()) {
        eprintln!("a refusal: {r}");
    }
    println!(
        "RESULT {kind} {label}: {ok} accepted, {refused} refused, in {secs:.2} s = {rate:.0} msg/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} connections, {sample_len}-byte messages",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        c.conns,
        label = c.label,
    );
}

// ---------------------------------------------------------------- HTTP

async fn http(a: HttpArgs) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    let corpus = Arc::new(Corpus::new(&a.common));
    let sample = corpus.message(0).len();
    let next = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(a.common.conns + 1));
    let auth = format!("Bearer {}", a.key);
    let mut tasks = Vec::new();
    for _ in 0..a.common.conns {
        let (corpus, next, ready, auth) =
            (corpus.clone(), next.clone(), ready.clone(), auth.clone());
        let (addr, total) = (a.addr, a.common.messages);
        tasks.push(tokio::spawn(async move {
            let opened = async {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let (sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
                    hyper_util::rt::TokioIo::new(tcp),
                )
                .await?;
                tokio::spawn(conn);
                anyhow::Ok(sender)
            }
            .await;
            ready.wait().await;
            let mut sender = opened?;
            let mut out = Outcome::new(total);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let req = hyper::Request::post("/v1/messages")
                    .header("host", addr.to_string())
                    .header("authorization", &auth)
                    .header("content-type", "message/rfc822")
                    .body(Full::new(Bytes::from(corpus.message(i))))?;
                let t = Instant::now();
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                if status == 202 {
                    out.ok += 1;
                    out.latencies_us.push(t.elapsed().as_micros() as u32);
                } else {
                    out.refused += 1;
                    out.last_refusal = Some(format!("{status} {}", String::from_utf8_lossy(&body)));
                }
            }
            anyhow::Ok(out)
        }));
    }
    ready.wait().await;
    let start = Instant::now();
    let mut outs = Vec::new();
    for t in tasks {
        outs.push(t.await??);
    }
    let elapsed = start.elapsed();
    report("http", &a.common, sample, elapsed, outs);
    Ok(())
}

// ---------------------------------------------------------------- outbound

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn wait_sent(a: WaitArgs) -> anyhow::Result<()> {
    use rusqlite::{Connection, OpenFlags};
    let since = a.since_ms.unwrap_or_else(now_ms);
    let conn = Connection::open_with_flags(
        &a.db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", a.db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut last_print = Instant::now();
    let counts = |conn: &Connection| -> anyhow::Result<Vec<(String, u64)>> {
        let mut st =
            conn.prepare_cached("SELECT status, count(*) FROM recipients GROUP BY status")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    loop {
        let c = counts(&conn)?;
        let sent = c.iter().find(|(s, _)| s == "sent").map_or(0, |x| x.1);
        if sent >= a.count {
            break;
        }
        if Instant::now() > deadline {
            bail!("timed out with {c:?}");
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            eprintln!("  … {:.1} s: {c:?}", (now_ms() - since) as f64 / 1000.0);
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = counts(&conn)?;
    let (first, last, n): (i64, i64, u64) = conn.query_row(
        "SELECT min(updated_at), max(updated_at), count(*) FROM recipients WHERE status = 'sent'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let total = (last - since).max(1) as f64 / 1000.0;
    let span = (last - first).max(1) as f64 / 1000.0;
    println!(
        "RESULT outbound {label}: {n} sent in {total:.2} s from start = {:.0} msg/s \
         (first to last sent: {span:.2} s = {:.0} msg/s); statuses {c:?}",
        n as f64 / total,
        (n.saturating_sub(1)) as f64 / span,
        label = a.label,
    );
    Ok(())
}
