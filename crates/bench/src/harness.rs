//! The pieces every benchmark phase uses: the receiver process, a tidings
//! started in-process on a fresh data directory, an event generator, and
//! the process's memory figures.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tidings::config::Durability;
use tidings::{App, Config, RunningApp};
use tidings_core::webhooks::WebhookInput;
use tidings_core::Tidings;
use tidings_types::{AccountId, EventData, EventType, Webhook};

use crate::receiver::Stats;

/// The receiver, running as a child process of the benchmark.
pub struct ReceiverProc {
    pub addr: SocketAddr,
    child: Child,
    // Held open: the receiver exits when it closes.
    _stdin: ChildStdin,
    http: reqwest::Client,
}

impl ReceiverProc {
    pub fn spawn() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the benchmark binary")?;
        let mut child = Command::new(exe)
            .arg("receiver")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the receiver")?;
        let stdin = child.stdin.take().context("receiver stdin")?;
        let stdout = child.stdout.take().context("receiver stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = match line.trim().strip_prefix("listening ") {
            Some(a) => a.parse()?,
            None => bail!("the receiver did not start: {line:?}"),
        };
        Ok(Self {
            addr,
            child,
            _stdin: stdin,
            http: reqwest::Client::new(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Forget latencies and milestones; note every `milestone`-th new
    /// delivery from now on (0: none).
    pub async fn reset(&self, milestone: u64) -> anyhow::Result<()> {
        self.http
            .post(format!(
                "http://{}/_bench/reset?milestone={milestone}",
                self.addr
            ))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub async fn stats(&self) -> anyhow::Result<Stats> {
        Ok(self
            .http
            .get(format!("http://{}/_bench/stats", self.addr))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Wait until `target` distinct deliveries have arrived. Fails if
    /// nothing new arrives for `stall`.
    pub async fn wait_for(&self, target: u64, stall: Duration) -> anyhow::Result<Stats> {
        let mut last = (0u64, Instant::now());
        loop {
            let s = self.stats().await?;
            if s.unique >= target {
                return Ok(s);
            }
            if s.unique != last.0 {
                last = (s.unique, Instant::now());
            } else if last.1.elapsed() > stall {
                bail!(
                    "deliveries stalled at {} of {target} for {stall:?}",
                    s.unique
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ReceiverProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tidings started in-process on a fresh data directory, with an account.
pub struct Instance {
    pub running: RunningApp,
    pub account: AccountId,
    pub dir: tempfile::TempDir,
}

impl Instance {
    pub async fn start(parent: &Path, durability: Durability) -> anyhow::Result<Self> {
        Self::start_with(parent, durability, |_| {}).await
    }

    /// [`Instance::start`], with `configure` applied to the configuration.
    pub async fn start_with(
        parent: &Path,
        durability: Durability,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tidings-bench-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a data directory in {}", parent.display()))?;
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        config.http.listen = "127.0.0.1:0".parse()?;
        config.webhooks.allow_loopback = true;
        // The set-ups send from domains they do not add: no DKIM key to
        // make, and none to sign with.
        config.sending.allow_any_sender = true;
        config.storage.durability = durability;
        // The load comes from one address, loopback: it may hold every
        // connection a listener takes.
        config.http.max_connections_per_ip = config.http.max_connections;
        configure(&mut config);
        let running = App::start(&config).await?;
        let account = running.app.create_account("bench", None).await?.id;
        Ok(Self {
            running,
            account,
            dir,
        })
    }

    pub fn app(&self) -> &Tidings {
        &self.running.app
    }

    /// A json webhook for every event type, with the default limits unless
    /// `max_in_flight` is given. Returns it and how many events it was
    /// backfilled with.
    pub async fn create_webhook(
        &self,
        url: String,
        max_in_flight: Option<u32>,
    ) -> anyhow::Result<(Webhook, u64)> {
        Ok(self
            .app()
            .create_webhook(self.account, webhook_input(url, max_in_flight))
            .await?)
    }

    /// `n` more accounts, each with a webhook to `url`, which get no
    /// events: what a webhook costs while its account is quiet.
    pub async fn add_quiet_accounts(&self, n: u32, url: &str) -> anyhow::Result<()> {
        for i in 0..n {
            let account = self
                .app()
                .create_account(&format!("quiet {i}"), None)
                .await?;
            self.app()
                .create_webhook(account.id, webhook_input(url.to_string(), None))
                .await?;
        }
        Ok(())
    }

    /// Bytes of the database and its WAL.
    pub fn disk_bytes(&self) -> u64 {
        let db = self.dir.path().join("tidings.db");
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
            .map(|m| m.len())
            .sum()
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

/// A realistic `sent` event; `custom_id` is what the application passed.
pub fn sent_event(i: u64, custom_id: String) -> EventData {
    let v = json!({
        "email": format!("user{i}@example.com"),
        "message_id": "msg_01jd0000000000000000000000",
        "smtp_message_id": format!("<{i}.bench@app.example.com>"),
        "custom_id": custom_id,
        "tags": ["receipt", "bench"],
        "subject": "Your receipt",
        "from": "shop@app.example.com",
        "remote_mta": "mx1.example.com",
        "smtp_response": "250 2.0.0 OK queued",
        "tls": true,
        "attempt": 1,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Record `n` events from `tasks` concurrent callers, `batch` events per
/// `record_events` call. Returns how long it took.
pub async fn record_many(
    app: &Tidings,
    account: AccountId,
    n: u64,
    batch: u64,
    tasks: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let (app, next) = (app.clone(), next.clone());
        set.spawn(async move {
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= n {
                    return anyhow::Ok(());
                }
                let to = (from + batch).min(n);
                let events = (from..to)
                    .map(|i| {
                        (
                            account,
                            EventType::Sent,
                            sent_event(i, format!("bench-{i}")),
                        )
                    })
                    .collect();
                // The recorded events are dropped at once: the generator
                // keeps nothing, so it adds little to the memory figures.
                app.record_events(events).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(started.elapsed())
}

/// `VmHWM` (peak) and `VmRSS` (current) of this process, in bytes.
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) used so far, in seconds: by this whole
/// process, by its SQLite writer thread, and by the process `other`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub process: f64,
    pub writer: f64,
    pub receiver: f64,
}

impl Cpu {
    pub fn now(receiver: &ReceiverProc) -> Self {
        let writer = std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .filter(|s| s.contains("(sqlite-writer)"))
            .map(|s| stat_cpu(&s))
            .sum();
        let read = |p: String| std::fs::read_to_string(p).map_or(0.0, |s| stat_cpu(&s));
        Cpu {
            process: read("/proc/self/stat".into()),
            writer,
            receiver: read(format!("/proc/{}/stat", receiver.child.id())),
        }
    }

    /// CPU per event between `self` (earlier) and `later`, as a line;
    /// `process` says what runs in this process.
    pub fn per_event(&self, later: &Cpu, events: u64, process: &str) -> String {
        let us = |s: f64| format!("{:.0} us", s * 1e6 / events.max(1) as f64);
        format!(
            "cpu per event: {process} {} (of which the SQLite writer thread {}), receiver {}",
            us(later.process - self.process),
            us(later.writer - self.writer),
            us(later.receiver - self.receiver)
        )
    }
}

/// utime + stime of a `/proc/.../stat` line, in seconds (USER_HZ is 100
/// on every Linux this runs on).
pub(crate) fn stat_cpu(stat: &str) -> f64 {
    // The command name may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the name come state, ppid, …: utime and stime are the 12th and 13th.
    (tick(11) + tick(12)) / 100.0
}

pub fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// A rate with thousands separators.
pub fn rate(n: u64, d: Duration) -> String {
    thousands((n as f64 / d.as_secs_f64().max(1e-9)).round() as u64)
}

pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where the data directories go: `--dir`, else the system's temp dir.
pub fn data_parent(dir: &Option<PathBuf>) -> PathBuf {
    dir.clone().unwrap_or_else(std::env::temp_dir)
}

/// A json webhook for every event type, with the default limits unless
/// `max_in_flight` is given.
fn webhook_input(url: String, max_in_flight: Option<u32>) -> WebhookInput {
    WebhookInput {
        url,
        event_types: None,
        format: None,
        fields: None,
        headers: None,
        description: None,
        max_in_flight,
        max_per_second: None,
        batch: None,
        secret: None,
        backfill: None,
    }
}
