//! `tidings-bench opens`: tracked opens over HTTP, recorded durably and
//! delivered to a webhook.
//!
//! tidings runs in this process as `tidings serve` wires it, with
//! `storage.durability = full` unless `--durability` says otherwise. The set-up sends messages to N distinct
//! recipients through the accept path (their outbound delivery goes to a
//! smarthost that never answers, so the only events are the opens), and a
//! webhook for `open` events points at the receiver process. The load
//! generator is a third process (this binary in its hidden `opens-load`
//! mode): HTTP/1.1 keep-alive connections on loopback, each request a
//! `GET /o/<token>.gif` with a token no other request uses. The pixel is
//! answered only after the open's event is committed and the WAL fsync'd,
//! so a `200` is an open recorded durably.
//!
//! With `--track click` the same runs measure click redirects instead:
//! the messages carry one tracked link, every request is a
//! `GET /c/<token>` of a different recipient, and a `303` to the link is a
//! click recorded durably.
//!
//! Two phases, each on a fresh data directory:
//!
//! - `throughput`: C connections as fast as they go (closed loop) for N
//!   requests: opens recorded per second; then the time until every one of
//!   them has reached the webhook.
//! - `latency`: an open loop at R requests/s for S seconds. Each request
//!   has a scheduled instant. A request that had to wait for its
//!   connection (a slow answer to the one before) counts from that instant,
//!   so a slow answer also counts against the requests queued behind it;
//!   one sent on time counts from its sending, since the generator's timer
//!   fires on 1 ms ticks. Latencies from the scheduled instant alone are
//!   printed as well.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tidings_core::webhooks::WebhookInput;
use tidings_tracking::TokenKind;
use tidings_types::EventType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{data_parent, mb, memory, ms, rate, thousands, Cpu, Instance, ReceiverProc};
use crate::webhooks::{load_average, run_phases, DurabilityArg};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Run only this phase (default: both).
    #[arg(long, value_enum)]
    phase: Option<Phase>,
    /// Opens (distinct recipients) in the throughput phase.
    #[arg(long, default_value_t = 300_000)]
    opens: u64,
    /// Connections of the load generator in the throughput phase.
    #[arg(long, default_value_t = 256)]
    conns: usize,
    /// Opens per second in the latency phase.
    #[arg(long, default_value_t = 5000)]
    rate: u32,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Connections of the load generator in the latency phase.
    #[arg(long, default_value_t = 64)]
    latency_conns: usize,
    /// Most events per webhook request (the webhook's `batch.max_events`,
    /// JSON array bodies); 1 sends one request per event.
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// What the requests follow: open pixels or click links.
    #[arg(long, value_enum, default_value_t = Track::Open)]
    track: Track,
    /// `storage.durability`: `full` fsyncs every commit before answering.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
    /// Where the temporary data directories go (default: the system's).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Track {
    Open,
    Click,
}

impl Track {
    /// The event each request records.
    fn event_type(self) -> EventType {
        match self {
            Track::Open => EventType::Open,
            Track::Click => EventType::Click,
        }
    }

    /// What each request records, in the plural.
    fn noun(self) -> &'static str {
        match self {
            Track::Open => "opens",
            Track::Click => "clicks",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Throughput,
    Latency,
}

/// Recipients per message in the set-up.
const PER_MESSAGE: u64 = 100;
const STALL: Duration = Duration::from_secs(60);

pub fn main(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(phase) = args.phase else {
        return run_phases(&["throughput", "latency"]);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_phase(&args, phase))?;
    // The set-up's messages wait on a smarthost that never answers; a
    // graceful stop would wait for them. Everything measured is printed.
    std::process::exit(0)
}

/// A smarthost that accepts connections and never says a word: outbound
/// delivery of the set-up's messages waits on it instead of producing
/// events.
async fn blackhole() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    Ok(addr)
}

async fn run_phase(args: &Args, phase: Phase) -> anyhow::Result<()> {
    let opens = match phase {
        Phase::Throughput => args.opens,
        Phase::Latency => u64::from(args.rate) * u64::from(args.seconds),
    };
    let rx = ReceiverProc::spawn()?;
    let hole = blackhole().await?;
    let inst = Instance::start_with(&data_parent(&args.dir), args.durability.config(), |c| {
        c.outbound.smarthost = Some(hole.to_string());
        c.hostname = "bench.test".into();
    })
    .await?;
    let app = inst.app().clone();
    let http_addr = inst.running.addr;

    // Set-up: messages to `opens` distinct recipients.
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let messages = opens.div_ceil(PER_MESSAGE);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let track = args.track;
    for _ in 0..4 {
        let (app, next, account) = (app.clone(), next.clone(), inst.account);
        set.spawn(async move {
            loop {
                let m = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if m >= messages {
                    return anyhow::Ok(());
                }
                let to: Vec<String> = (0..PER_MESSAGE)
                    .map(|i| format!("reader{}@example.test", m * PER_MESSAGE + i))
                    .collect();
                let req = serde_json::from_value(serde_json::json!({
                    "from": "news@bench.test",
                    "to": to,
                    "subject": "Your weekly summary",
                    "html": "<p>Hello, here is <a href=\"https://example.com/offer?id=42\">your offer</a>.</p>",
                    "track": {"opens": track == Track::Open, "clicks": track == Track::Click},
                }))?;
                app.send_json(account, req).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    // Recipient rows are numbered from 1 in a fresh store.
    let paths: Vec<String> = (1..=(messages * PER_MESSAGE) as i64)
        .take(opens as usize)
        .map(|id| {
            let token = |kind| {
                app.tracking_token(id, kind)
                    .context("tracking is not configured")
            };
            Ok(match track {
                Track::Open => format!("/o/{}.gif", token(TokenKind::Open)?),
                Track::Click => format!("/c/{}", token(TokenKind::Click { link_index: 0 })?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let path_file = inst.dir.path().join("request-paths");
    std::fs::write(&path_file, paths.join("\n"))?;
    let batch =
        (args.batch > 1).then(|| serde_json::json!({"max_events": args.batch, "max_wait_ms": 5}));
    let input = WebhookInput {
        url: rx.url(),
        event_types: Some(vec![track.event_type()]),
        ..serde_json::from_value::<WebhookInput>(serde_json::json!({"url": "", "batch": batch}))?
    };
    app.create_webhook(inst.account, input).await?;
    println!(
        "\n== {phase:?}: set-up: {} messages to {} recipients in {:.1} s; webhook for `{}`, {}",
        thousands(messages),
        thousands(opens),
        t.elapsed().as_secs_f64(),
        track.event_type().as_str(),
        if args.batch > 1 {
            format!("batches of up to {} events (5 ms wait)", args.batch)
        } else {
            "one request per event".to_string()
        }
    );

    let (conns, pace) = match phase {
        Phase::Throughput => (args.conns, 0),
        Phase::Latency => (args.latency_conns, args.rate),
    };
    println!(
        "load: {} connections, {}, {} distinct {} tokens; load average {}",
        conns,
        if pace == 0 {
            "as fast as they go".to_string()
        } else {
            format!("open loop at {}/s", thousands(pace.into()))
        },
        thousands(opens),
        track.event_type().as_str(),
        load_average()
    );
    let cpu0 = Cpu::now(&rx);
    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .args(["opens-load", "--addr", &http_addr.to_string()])
        .args(["--paths", &path_file.display().to_string()])
        .args(["--conns", &conns.to_string(), "--rate", &pace.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running the load generator")?;
    let loaded = started.elapsed();
    if !out.status.success() {
        bail!("the load generator failed ({})", out.status);
    }
    let r: LoadReport = serde_json::from_slice(&out.stdout).context("the load report")?;
    let cpu1 = Cpu::now(&rx);
    println!(
        "answered: {} of {} (errors {}) in {:.2} s = {} {}/s recorded",
        thousands(r.ok),
        thousands(r.sent),
        r.errors,
        r.seconds,
        rate(r.ok, Duration::from_secs_f64(r.seconds)),
        track.noun()
    );
    println!(
        "response latency: {}{}",
        r.latency.show(),
        if pace > 0 {
            " (from sending; from the scheduled instant if the request waited for its connection)"
        } else {
            ""
        }
    );
    if let Some(q) = &r.from_schedule {
        println!(
            "  from each request's scheduled instant: {} (adds the generator's 1 ms timer ticks)",
            q.show()
        );
    }
    println!(
        "load generator cpu: {:.0} us per request",
        r.cpu_seconds * 1e6 / r.sent.max(1) as f64
    );
    println!("{}", cpu0.per_event(&cpu1, r.ok, "tidings"));
    let s = rx.wait_for(r.ok, STALL).await?;
    let took = started.elapsed();
    println!(
        "delivered to the webhook: {} distinct {}, all of them {:.2} s after the load started ({:.2} s after it ended); redeliveries {}",
        thousands(s.unique),
        track.noun(),
        took.as_secs_f64(),
        (took - loaded).as_secs_f64(),
        s.total - s.unique
    );
    if s.unique != r.ok {
        bail!(
            "{} {} answered but {} delivered",
            r.ok,
            track.noun(),
            s.unique
        );
    }
    let (hwm, _) = memory();
    println!("memory: peak RSS {}", mb(hwm));
    Ok(())
}

/// What the load generator reports on stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadReport {
    sent: u64,
    ok: u64,
    errors: u64,
    seconds: f64,
    /// From each request's sending, or from its scheduled instant when it
    /// had to wait for its connection.
    latency: Quantiles,
    /// Open loop only: from each request's scheduled instant, whatever
    /// delayed it. This also counts the generator's own lateness: tokio's
    /// timers fire on millisecond ticks, so a request goes out up to 1 ms
    /// after its instant even on an idle connection.
    from_schedule: Option<Quantiles>,
    cpu_seconds: f64,
}

/// Latency quantiles in microseconds.
#[derive(Debug, Serialize, Deserialize)]
struct Quantiles {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Quantiles {
    fn of(mut us: Vec<u64>) -> Self {
        us.sort_unstable();
        let q = |p: f64| {
            us.get(((us.len() as f64 * p) as usize).min(us.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        Self {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: us.last().copied().unwrap_or(0),
        }
    }

    fn show(&self) -> String {
        format!(
            "p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    #[arg(long)]
    addr: SocketAddr,
    /// A file with one request path per line.
    #[arg(long)]
    paths: PathBuf,
    #[arg(long)]
    conns: usize,
    /// Requests per second in all (0: as fast as the connections go).
    #[arg(long, default_value_t = 0)]
    rate: u32,
}

/// The load generator: one task per keep-alive connection; request `i`
/// goes on connection `i mod conns`, at `start + i / rate` when paced.
///
/// It speaks HTTP/1.1 itself, on one thread: each request is written as
/// it goes on the wire and each answer read into a buffer the connection
/// keeps, so that the generator's share of the two cores stays small
/// (a general-purpose client took twice the CPU per request).
pub fn load(args: LoadArgs) -> anyhow::Result<()> {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        std::fs::read_to_string(&args.paths)?
            .lines()
            .map(|t| {
                format!(
                    "GET {t} HTTP/1.1\r\nhost: localhost\r\n\
                     user-agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Outlook-Bench/16.0\r\n\r\n"
                )
                .into_bytes()
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async move {
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let mut set = tokio::task::JoinSet::new();
        for k in 0..args.conns {
            let requests = requests.clone();
            let (addr, conns, rate) = (args.addr, args.conns, args.rate);
            set.spawn(async move {
                let mut stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let mut buf = Vec::with_capacity(1024);
                let mut lat = Vec::with_capacity(requests.len() / conns + 1);
                let mut late = Vec::with_capacity(if rate > 0 { lat.capacity() } else { 0 });
                let (mut ok, mut errors) = (0u64, 0u64);
                let mut i = k;
                while i < requests.len() {
                    // `from`: when the request was sent, or its scheduled
                    // instant if it had to wait for the connection (a slow
                    // answer to the one before it), so that waiting counts.
                    let (from, due) = if rate > 0 {
                        let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
                        if tokio::time::Instant::now() >= due {
                            (due, due)
                        } else {
                            tokio::time::sleep_until(due).await;
                            (tokio::time::Instant::now(), due)
                        }
                    } else {
                        let now = tokio::time::Instant::now();
                        (now, now)
                    };
                    stream.write_all(&requests[i]).await?;
                    let status = read_response(&mut stream, &mut buf).await?;
                    lat.push(from.elapsed().as_micros() as u64);
                    if rate > 0 {
                        late.push(due.elapsed().as_micros() as u64);
                    }
                    if (200..400).contains(&status) {
                        ok += 1;
                    } else {
                        errors += 1;
                    }
                    i += conns;
                }
                anyhow::Ok((lat, late, ok, errors))
            });
        }
        let (mut all, mut all_late) = (Vec::with_capacity(requests.len()), Vec::new());
        let (mut ok, mut errors) = (0, 0);
        while let Some(r) = set.join_next().await {
            let (l, d, o, e) = r??;
            all.extend(l);
            all_late.extend(d);
            ok += o;
            errors += e;
        }
        let seconds = start.elapsed().as_secs_f64();
        anyhow::Ok(LoadReport {
            sent: all.len() as u64,
            ok,
            errors,
            seconds,
            latency: Quantiles::of(all),
            from_schedule: (!all_late.is_empty()).then(|| Quantiles::of(all_late)),
            cpu_seconds: 0.0,
        })
    })?;
    let mut report = report;
    report.cpu_seconds = self_cpu();
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Read one HTTP/1.1 response with a `content-length` body from `stream`
/// and return its status. `buf` keeps nothing between calls: the server
/// answers one request at a time.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut res = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = res.parse(buf)? {
            let length = res
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .context("a response without content-length")?;
            let status = res.code.context("a response without a status")?;
            if buf.len() >= head + length {
                return Ok(status);
            }
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("the server closed the connection");
        }
    }
}

fn self_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| crate::harness::stat_cpu(&s))
}
