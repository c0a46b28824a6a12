//! The fast webhook receiver, run as a separate process (`tidings-bench
//! receiver`) so that its CPU time and memory are not counted as tidings'.
//!
//! A minimal hyper HTTP/1.1 keep-alive server on one thread: every request
//! outside `/_bench/` is a delivery, answered `200` with an empty body.
//! Deliveries are counted once per `webhook-id` (a redelivery after a lost
//! completion is not a second delivery); a batch (a JSON array) counts
//! once per event id in it. When an event carries a `custom_id` that is a
//! number, it is read as the send instant in microseconds since the epoch
//! and the receiver keeps arrival − send as the event-to-delivery latency.
//!
//! The benchmark talks to it over two control endpoints on the same port:
//! `POST /_bench/reset?milestone=K` forgets latencies and milestones and
//! from then on notes the arrival time of every K-th new delivery;
//! `GET /_bench/stats` returns the counts, latency percentiles and
//! milestones as JSON. The receiver prints `listening ADDR` on stdout once
//! bound and exits when its standard input closes (its parent is gone).

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::now_us;

/// What the receiver has seen, as `GET /_bench/stats` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Distinct `webhook-id`s received.
    pub unique: u64,
    /// Deliveries received (each event of a batch counts), redeliveries
    /// included.
    pub total: u64,
    /// Arrival of the first and the latest new delivery (µs since epoch).
    pub first_us: u64,
    pub last_us: u64,
    /// Latency samples since the last reset.
    pub latency_count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// `(unique count, arrival µs)` of every K-th new delivery since the
    /// last reset.
    pub milestones: Vec<(u64, u64)>,
}

#[derive(Default)]
struct State {
    seen: HashSet<u128>,
    seen_other: HashSet<String>,
    unique: u64,
    total: u64,
    first_us: u64,
    last_us: u64,
    latencies: Vec<u32>,
    milestone: u64,
    milestones: Vec<(u64, u64)>,
}

impl State {
    fn is_new(&mut self, id: &str) -> bool {
        match id
            .strip_prefix("evt_")
            .and_then(|u| ulid::Ulid::from_string(u).ok())
        {
            Some(u) => self.seen.insert(u.0),
            None => self.seen_other.insert(id.to_string()),
        }
    }

    /// A delivery of `id` arrived at `now`, sent at `sent` if known.
    fn arrived(&mut self, id: &str, now: u64, sent: Option<u64>) {
        self.total += 1;
        if !self.is_new(id) {
            return;
        }
        self.unique += 1;
        if self.first_us == 0 {
            self.first_us = now;
        }
        self.last_us = now;
        if self.milestone > 0 && self.unique.is_multiple_of(self.milestone) {
            self.milestones.push((self.unique, now));
        }
        if let Some(sent) = sent {
            let lat = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
            self.latencies.push(lat);
        }
    }

    fn stats(&self) -> Stats {
        let mut lat = self.latencies.clone();
        lat.sort_unstable();
        let pct = |p: f64| -> u64 {
            if lat.is_empty() {
                return 0;
            }
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            u64::from(lat[i])
        };
        Stats {
            unique: self.unique,
            total: self.total,
            first_us: self.first_us,
            last_us: self.last_us,
            latency_count: lat.len() as u64,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
            max_us: lat.last().copied().map_or(0, u64::from),
            milestones: self.milestones.clone(),
        }
    }
}

/// What the receiver reads of each event in a batch.
#[derive(Deserialize)]
struct BatchedEvent {
    id: String,
    #[serde(default)]
    data: BatchedData,
}

#[derive(Deserialize, Default)]
struct BatchedData {
    #[serde(default)]
    custom_id: Option<String>,
}

/// Find `"custom_id":"<digits>"` in a JSON body without parsing all of it.
fn sent_at_us(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"custom_id\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = &body[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

type Shared = Arc<Mutex<State>>;

async fn handle(
    req: Request<Incoming>,
    state: Shared,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if path == "/_bench/stats" {
        let stats = state.lock().expect("state").stats();
        let body = serde_json::to_vec(&stats).unwrap_or_default();
        return Ok(Response::new(Full::new(Bytes::from(body))));
    }
    if path == "/_bench/reset" {
        let milestone = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("milestone="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut s = state.lock().expect("state");
        s.latencies.clear();
        s.milestones.clear();
        s.milestone = milestone;
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let now = now_us();
    if body.first() == Some(&b'[') {
        let batch: Vec<BatchedEvent> = serde_json::from_slice(&body).unwrap_or_default();
        let mut s = state.lock().expect("state");
        for e in batch {
            let sent = e.data.custom_id.and_then(|c| c.parse().ok());
            s.arrived(&e.id, now, sent);
        }
    } else {
        let sent = sent_at_us(&body);
        state.lock().expect("state").arrived(&id, now, sent);
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

/// Run the receiver until standard input closes.
pub fn run() -> anyhow::Result<()> {
    // The parent holds our stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening {}", listener.local_addr()?)?;
            out.flush()?;
        }
        let state: Shared = Arc::default();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, state.clone()));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_send_instant() {
        let body = br#"{"data":{"custom_id":"1712345678901234","email":"a@b"},"id":"evt_x"}"#;
        assert_eq!(sent_at_us(body), Some(1_712_345_678_901_234));
        assert_eq!(sent_at_us(br#"{"data":{"custom_id":"abc"}}"#), None);
        assert_eq!(sent_at_us(br#"{"data":{}}"#), None);
    }
}
