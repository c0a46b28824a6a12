//! `tidings-bench`: benchmarks of tidings as a whole, run on demand (they
//! are not tests and nothing times them in CI).
//!
//! `tidings-bench opens` measures tracked opens: pixel requests over HTTP
//! from a separate load-generator process, each recorded durably and
//! delivered to a webhook.
//!
//! `tidings-bench webhooks` measures webhook delivery on the embedded
//! SQLite store with fsync'd commits: deliveries per second while events
//! are recorded, event-to-delivery latency at a steady rate, and peak
//! memory with a large backlog. tidings runs in this process exactly as
//! `tidings serve` wires it ([`tidings::App::start`]); events go in through
//! the core library's entry point ([`tidings_core::Tidings::record_events`]),
//! the one sending, tracking and inbound call. The receiver runs as a
//! separate process (this binary in its hidden `receiver` mode), so its
//! CPU time and memory are not counted as tidings'. Figures and the
//! machine they were taken on are in `docs/benchmarks.md`.

mod harness;
mod opens;
mod receiver;
mod webhooks;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tidings-bench", about = "Benchmarks of tidings")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Webhook delivery: throughput, latency at a steady rate, memory and
    /// drain rate with a backlog.
    Webhooks(webhooks::Args),
    /// Tracked opens over HTTP: opens recorded per second, latency at a
    /// steady rate, every one delivered to a webhook.
    Opens(opens::Args),
    /// The opens load generator (started by the benchmark itself).
    #[command(hide = true)]
    OpensLoad(opens::LoadArgs),
    /// The webhook receiver (started by the benchmark itself).
    #[command(hide = true)]
    Receiver,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Webhooks(args) => webhooks::main(args),
        Command::Opens(args) => opens::main(args),
        Command::OpensLoad(args) => opens::load(args),
        Command::Receiver => receiver::run(),
    }
}

/// Microseconds since the Unix epoch, the unit every process of the
/// benchmark uses to stamp instants.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
