//! Parse-and-classify throughput over a corpus folder, on one thread.
//!
//! ```text
//! bounce-bench <corpus-dir> [seconds]
//! ```
//!
//! Every message of the folder (labelled or not) is parsed in turn, round
//! after round, until at least `seconds` (default 3) have passed.

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bounce-bench <corpus-dir> [seconds]");
        return ExitCode::from(2);
    };
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let corpus = match common::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bounce-bench: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let bytes: usize = corpus.samples.iter().map(|s| s.bytes.len()).sum();
    // Warm up once.
    for s in &corpus.samples {
        black_box(tidings_bounce::parse(&s.bytes));
    }
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut messages = 0usize;
    let mut rounds = 0usize;
    while start.elapsed() < budget {
        for s in &corpus.samples {
            black_box(tidings_bounce::parse(black_box(&s.bytes)));
        }
        messages += corpus.samples.len();
        rounds += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{} messages ({} KiB) x {rounds} rounds = {messages} parses in {elapsed:.2} s: {:.0} messages/s, {:.1} MiB/s (1 thread)",
        corpus.samples.len(),
        bytes / 1024,
        messages as f64 / elapsed,
        (bytes * rounds) as f64 / elapsed / (1024.0 * 1024.0),
    );
    ExitCode::SUCCESS
}
