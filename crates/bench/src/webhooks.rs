//! `tidings-bench webhooks`: webhook delivery on the embedded store.
//!
//! Three phases, each in a process of its own (this binary re-run with
//! `--phase`) so that each one's peak RSS is its own, each on a fresh data
//! directory and with a fresh receiver process:
//!
//! - `throughput`: record N events for one webhook as fast as the
//!   generator can while the dispatcher delivers them; deliveries per
//!   second from the first record to the last delivery, and per tenth of
//!   the run, to show the rate does not fall as the log grows.
//! - `latency`: single `record_event` calls paced at a steady rate; the
//!   send instant (µs since epoch) travels in the event's `custom_id` and
//!   the receiver computes arrival − send.
//! - `backlog`: record M events while the account has no webhook, then
//!   create one: its 7-day backfill enqueues all M in one transaction.
//!   This builds a backlog of M undelivered jobs without failing deliveries
//!   (a receiver that is down would instead exercise retries and pausing).
//!   Then the drain rate per chunk and the peak RSS.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use tidings_types::EventType;

use crate::harness::{
    data_parent, mb, memory, ms, rate, record_many, sent_event, thousands, Cpu, Instance,
    ReceiverProc,
};
use crate::now_us;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Run only this phase (default: all, each in its own process).
    #[arg(long, value_enum)]
    phase: Option<Phase>,
    /// Events recorded in the throughput phase.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events per `record_events` call in the throughput and backlog phases.
    #[arg(long, default_value_t = 100)]
    record_batch: u64,
    /// Concurrent recording tasks in the throughput and backlog phases.
    #[arg(long, default_value_t = 4)]
    record_tasks: usize,
    /// Events per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds measured in the latency phase (after the warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Seconds of warm-up before the latency is measured.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Undelivered events in the backlog phase.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: u64,
    /// Deliveries per drain-rate figure in the backlog phase.
    #[arg(long, default_value_t = 100_000)]
    chunk: u64,
    /// Other accounts, each with a webhook of its own, that record no
    /// events during the throughput and latency phases: what many quiet
    /// webhooks cost the one that is busy.
    #[arg(long, default_value_t = 0)]
    quiet_webhooks: u32,
    /// The webhook's `max_in_flight` (default: tidings' default).
    #[arg(long)]
    max_in_flight: Option<u32>,
    /// `storage.durability`: `full` fsyncs every commit.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
    /// Where the temporary data directories go (default: the system's).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Throughput,
    Latency,
    Backlog,
}

/// `storage.durability` of the instance under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    Full,
    Normal,
}

impl DurabilityArg {
    pub fn config(self) -> tidings::config::Durability {
        match self {
            DurabilityArg::Full => tidings::config::Durability::Full,
            DurabilityArg::Normal => tidings::config::Durability::Normal,
        }
    }
}

/// How the phase's heading names the quiet webhooks, if any.
fn quiet(args: &Args) -> String {
    match args.quiet_webhooks {
        0 => String::new(),
        n => format!(
            " and {} quiet webhooks of other accounts",
            thousands(n.into())
        ),
    }
}

/// Stop waiting when no new delivery arrives for this long.
const STALL: Duration = Duration::from_secs(60);

pub fn main(args: Args) -> anyhow::Result<()> {
    let Some(phase) = args.phase else {
        return run_phases(&["throughput", "latency", "backlog"]);
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match phase {
            Phase::Throughput => throughput(&args).await,
            Phase::Latency => latency(&args).await,
            Phase::Backlog => backlog(&args).await,
        }
    })
}

/// Run `phases` one after the other, each in a child process of its own
/// (this binary again, with the same arguments and `--phase`), so that no
/// phase sees another's leftover work.
pub(crate) fn run_phases(phases: &[&str]) -> anyhow::Result<()> {
    print_machine();
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let passed: Vec<String> = std::env::args().skip(1).collect();
    for phase in phases {
        let status = Command::new(&exe)
            .args(&passed)
            .args(["--phase", phase])
            .status()
            .with_context(|| format!("running the {phase} phase"))?;
        if !status.success() {
            bail!("the {phase} phase failed ({status})");
        }
    }
    Ok(())
}

pub(crate) fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cpu}, {cores} cores");
    println!("load average at start: {}", load_average());
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn footer(inst: &Instance) {
    let (hwm, rss) = memory();
    println!(
        "memory: peak RSS {} (VmHWM of tidings and the in-process generator; the receiver is a separate process), RSS now {}; database + WAL {}",
        mb(hwm),
        mb(rss),
        mb(inst.disk_bytes())
    );
}

/// Per-chunk rates from the receiver's milestones, starting at `from_us`.
fn chunk_rates(milestones: &[(u64, u64)], from_us: u64) -> Vec<String> {
    let mut prev = (0u64, from_us);
    milestones
        .iter()
        .map(|&(n, t)| {
            let r = rate(n - prev.0, Duration::from_micros(t.saturating_sub(prev.1)));
            prev = (n, t);
            r
        })
        .collect()
}

async fn throughput(args: &Args) -> anyhow::Result<()> {
    let n = args.events;
    let rx = ReceiverProc::spawn()?;
    let inst = Instance::start(&data_parent(&args.dir), args.durability.config()).await?;
    let (wh, _) = inst.create_webhook(rx.url(), args.max_in_flight).await?;
    inst.add_quiet_accounts(args.quiet_webhooks, &rx.url())
        .await?;
    println!(
        "\n== throughput: {} events for one webhook (json, max_in_flight {}){}, durability {:?}; load {}",
        thousands(n),
        wh.settings.max_in_flight,
        quiet(args),
        args.durability,
        load_average()
    );
    let chunk = (n / 10).max(1);
    rx.reset(chunk).await?;
    let cpu0 = Cpu::now(&rx);
    let t0_us = now_us();
    let recorded = record_many(
        inst.app(),
        inst.account,
        n,
        args.record_batch,
        args.record_tasks,
    )
    .await?;
    println!(
        "recorded: {} events/s ({} in {:.2} s; record_events, {} tasks x {} events per call)",
        rate(n, recorded),
        thousands(n),
        recorded.as_secs_f64(),
        args.record_tasks,
        args.record_batch
    );
    let s = rx.wait_for(n, STALL).await?;
    let total = Duration::from_micros(s.last_us - t0_us);
    println!(
        "delivered: {} events/s ({} in {:.2} s from the first record to the last delivery)",
        rate(n, total),
        thousands(n),
        total.as_secs_f64()
    );
    if s.milestones.len() >= 9 {
        let (a, b) = (s.milestones[0], s.milestones[8]);
        println!(
            "  sustained from 10% to 90% of deliveries: {}/s",
            rate(b.0 - a.0, Duration::from_micros(b.1 - a.1))
        );
    }
    println!(
        "  per {}: {}",
        thousands(chunk),
        chunk_rates(&s.milestones, t0_us).join(", ")
    );
    println!("  redeliveries: {}", s.total - s.unique);
    println!(
        "{}",
        cpu0.per_event(&Cpu::now(&rx), n, "tidings + generator")
    );
    footer(&inst);
    inst.stop().await;
    Ok(())
}

/// Record `count` events with single `record_event` calls, one every
/// `period`, each carrying its send instant in `custom_id`; the calls are
/// not waited for one by one (an open loop, as independent producers are).
/// Returns the durations of the calls, in µs.
async fn paced(inst: &Instance, count: u64, period: Duration) -> anyhow::Result<Vec<u32>> {
    let calls = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let mut set = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(start + period * i as u32).await;
        let (app, account, calls) = (inst.app().clone(), inst.account, calls.clone());
        set.spawn(async move {
            let sent = now_us();
            app.record_event(account, EventType::Sent, sent_event(i, sent.to_string()))
                .await?;
            let took = (now_us() - sent).min(u64::from(u32::MAX)) as u32;
            calls.lock().expect("calls").push(took);
            anyhow::Ok(())
        });
        while let Some(r) = set.try_join_next() {
            r??;
        }
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let mut calls = std::mem::take(&mut *calls.lock().expect("calls"));
    calls.sort_unstable();
    Ok(calls)
}

fn pct(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    u64::from(sorted[i])
}

async fn latency(args: &Args) -> anyhow::Result<()> {
    let rx = ReceiverProc::spawn()?;
    let inst = Instance::start(&data_parent(&args.dir), args.durability.config()).await?;
    let (wh, _) = inst.create_webhook(rx.url(), args.max_in_flight).await?;
    inst.add_quiet_accounts(args.quiet_webhooks, &rx.url())
        .await?;
    let period = Duration::from_secs(1) / args.rate.max(1);
    println!(
        "\n== latency: {} events/s for {} s (after {} s of warm-up), single record_event calls, one webhook (max_in_flight {}){}, durability {:?}; load {}",
        thousands(args.rate.into()),
        args.seconds,
        args.warmup,
        wh.settings.max_in_flight,
        quiet(args),
        args.durability,
        load_average()
    );
    let warm = u64::from(args.rate) * u64::from(args.warmup);
    paced(&inst, warm, period).await?;
    rx.wait_for(warm, STALL).await?;
    rx.reset(0).await?;
    let count = u64::from(args.rate) * u64::from(args.seconds);
    let cpu0 = Cpu::now(&rx);
    let started = Instant::now();
    let calls = paced(&inst, count, period).await?;
    let took = started.elapsed();
    let s = rx.wait_for(warm + count, STALL).await?;
    println!(
        "event-to-delivery: p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({} samples; achieved {}/s)",
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.p999_us),
        ms(s.max_us),
        thousands(s.latency_count),
        rate(count, took)
    );
    println!(
        "  of which record_event (commit): p50 {}, p99 {}, max {}",
        ms(pct(&calls, 0.5)),
        ms(pct(&calls, 0.99)),
        ms(calls.last().copied().map_or(0, u64::from))
    );
    println!(
        "{}",
        cpu0.per_event(&Cpu::now(&rx), count, "tidings + generator")
    );
    footer(&inst);
    inst.stop().await;
    Ok(())
}

async fn backlog(args: &Args) -> anyhow::Result<()> {
    let m = args.backlog;
    let rx = ReceiverProc::spawn()?;
    let inst = Instance::start(&data_parent(&args.dir), args.durability.config()).await?;
    println!(
        "\n== backlog: {} events recorded with no webhook, then a webhook whose 7-day backfill enqueues them all; durability {:?}; load {}",
        thousands(m),
        args.durability,
        load_average()
    );
    let recorded = record_many(
        inst.app(),
        inst.account,
        m,
        args.record_batch,
        args.record_tasks,
    )
    .await?;
    let (hwm, _) = memory();
    println!(
        "recorded: {} events/s ({} in {:.2} s, no webhook: no jobs); peak RSS so far {}",
        rate(m, recorded),
        thousands(m),
        recorded.as_secs_f64(),
        mb(hwm)
    );
    rx.reset(args.chunk).await?;
    let cpu0 = Cpu::now(&rx);
    let t0 = Instant::now();
    let (_, n) = inst.create_webhook(rx.url(), args.max_in_flight).await?;
    let t1_us = now_us();
    println!(
        "backfill: {} jobs enqueued in {:.2} s (one transaction); peak RSS so far {}",
        thousands(n),
        t0.elapsed().as_secs_f64(),
        mb(memory().0)
    );
    if n != m {
        bail!("expected a backfill of {m} events, got {n}");
    }
    let s = rx.wait_for(n, STALL).await?;
    let drain = Duration::from_micros(s.last_us - t1_us);
    println!(
        "drained: {} deliveries/s ({} in {:.2} s)",
        rate(n, drain),
        thousands(n),
        drain.as_secs_f64()
    );
    println!(
        "  per {}: {}",
        thousands(args.chunk),
        chunk_rates(&s.milestones, t1_us).join(", ")
    );
    println!("  redeliveries: {}", s.total - s.unique);
    println!(
        "{}",
        cpu0.per_event(&Cpu::now(&rx), n, "tidings + generator")
    );
    footer(&inst);
    inst.stop().await;
    Ok(())
}
