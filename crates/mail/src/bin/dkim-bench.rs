//! DKIM signing throughput on one core, for capacity planning:
//! `cargo run -p tidings-mail --release --bin dkim-bench [seconds per case]`.
//!
//! Signs a 10 KB message in a loop with a reused [`Signer`] for RSA-2048
//! and Ed25519, and also times building a `Signer` (PEM parsing), which is
//! what caching one per domain saves.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tidings_mail::dkim::{DkimKey, KeyAlgorithm, Signer};

fn message() -> Vec<u8> {
    let mut m = b"From: Shop <shop@example.com>\r\n\
To: someone@example.org\r\n\
Subject: Your receipt\r\n\
Date: Tue, 25 Nov 2025 10:00:00 +0000\r\n\
Message-ID: <bench@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\n"
        .to_vec();
    let line =
        b"Thank you for your order. Caf\xc3\xa9 au lait, 2 x 3,50 \xe2\x82\xac, shipped today.\r\n";
    while m.len() < 10 * 1024 {
        m.extend_from_slice(line);
    }
    m
}

/// This thread's CPU time, from Linux's schedstat (None elsewhere).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// Runs `f` repeatedly for about `budget` of wall time; returns calls per
/// wall-clock second and per second of this thread's CPU time (the figure
/// that holds on a busy machine, where the thread waits for a core).
fn rate(budget: Duration, mut f: impl FnMut()) -> (f64, Option<f64>) {
    f(); // warm up
    let start = Instant::now();
    let cpu = thread_cpu();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    let wall = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu
        .zip(thread_cpu())
        .map(|(a, b)| n as f64 / (b - a).as_secs_f64());
    (wall, cpu)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let msg = message();
    println!(
        "DKIM signing, one thread, {} byte message, {secs} s per case",
        msg.len()
    );
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
        let key = DkimKey::generate("example.com", "bench", alg).expect("key generation");
        let signer = Signer::new(&key).expect("signer");
        let (wall, cpu) = rate(budget, || {
            black_box(signer.sign(black_box(&msg), 1_764_000_000).unwrap());
        });
        let (parse, _) = rate(budget / 4, || {
            black_box(Signer::new(black_box(&key)).unwrap());
        });
        let per_cpu = cpu.map_or(String::new(), |c| {
            format!(", {c:.0}/s of CPU time ({:.3} ms each)", 1e3 / c)
        });
        println!(
            "{alg:?}: {wall:.0} signatures/s wall ({:.3} ms each){per_cpu}; \
             building a Signer: {:.3} ms",
            1e3 / wall,
            1e3 / parse
        );
    }
}
