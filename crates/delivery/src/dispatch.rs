//! The dispatcher: the loop that turns due jobs into HTTP requests.
//!
//! Three kinds of task cooperate, connected by channels:
//!
//! - the **leaser** (the `run` loop itself; the stream reads are in
//!   `read`) reads each webhook's live stream (the new events of its account, straight from the log) and
//!   leases due jobs (retries, released holds, backfill, replay, tests),
//!   in batches, and routes each delivery to its webhook's lane. It sleeps
//!   until the next job is due or the store says something new exists —
//!   never on a fixed poll interval. It holds at most `max_held` deliveries
//!   in memory, and skips webhooks whose lane is already full, so one slow
//!   receiver cannot starve the others or fill memory.
//! - one **lane** per webhook applies the receiver's limits (requests in
//!   flight, requests per second), groups events into batches where the
//!   webhook asks for it, and spawns the sends.
//! - the **completer** gathers attempt outcomes and commits them in batches:
//!   call log rows, job retries, held events, failure counts and pauses,
//!   and how far each live stream is settled, all in one transaction per
//!   batch.
//!
//! Between them, a **gate** per (webhook, event type) ([`gates`]) stops
//! every delivery of a type the moment the failure that pauses it is
//! known, wherever the delivery is (just read, queued in the lane, waiting
//! for a send slot): it is held for the resume instead of sent.
//!
//! Every event is delivered at least once: if the process dies between the
//! HTTP request and the completer's commit, the job's lease expires, or the
//! stream is read again from where it was settled, and the event is sent
//! again with the same `webhook-id`, which receivers use to dedupe.

mod complete;
mod gates;
mod lanes;
mod read;
mod send;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tidings_core::work::{Hold, JobOutcome, LeasedJob, PauseReason, Unlease};
use tidings_core::Tidings;
use tidings_types::{Clock, Timestamp, Webhook, WebhookId};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::WebhookClient;
use crate::limits::Limiter;
use crate::retry::RetryPolicy;
use complete::complete_loop;
use gates::Gates;
use lanes::route;
use read::{read_streams, refresh_streams, Streams};
use tidings_core::metrics::Metrics;

/// Tuning of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Most jobs leased in one store call.
    pub lease_batch: u32,
    /// Most jobs held in memory (queued in lanes or in flight) at once.
    pub max_held: usize,
    /// Most jobs queued in one webhook's lane.
    pub lane_capacity: usize,
    /// How long a lease lasts; must exceed the request timeout comfortably.
    pub lease_duration: Duration,
    pub retry: RetryPolicy,
    /// Make every leased job due again at start. Only correct when this
    /// process is the store's only user (embedded SQLite).
    pub release_leases_on_start: bool,
    /// Seed for retry jitter; random when `None`.
    pub seed: Option<u64>,
    /// Told whenever an event type is paused on a webhook (to notify the
    /// account); called after the pause is committed.
    pub on_pause: Option<PauseHook>,
}

/// A callback for pauses.
#[derive(Clone)]
pub struct PauseHook(
    pub Arc<dyn Fn(WebhookId, tidings_types::EventType, PauseReason) + Send + Sync>,
);

impl std::fmt::Debug for PauseHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PauseHook")
    }
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            lease_batch: 1000,
            max_held: 8192,
            lane_capacity: 2048,
            lease_duration: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            release_leases_on_start: false,
            seed: None,
            on_pause: None,
        }
    }
}

struct Inner {
    /// The use cases the dispatcher reads, leases and commits through.
    app: Tidings,
    clock: Arc<dyn Clock>,
    client: WebhookClient,
    config: DispatcherConfig,
    metrics: Arc<Metrics>,
    /// Jobs leased and not yet completed.
    held: AtomicUsize,
    /// Signalled when completions free room.
    progress: Notify,
    rng: Mutex<StdRng>,
    /// The live streams this dispatcher reads, shared by the leaser (which
    /// reads them) and the completer (which settles them).
    streams: Mutex<Streams>,
    /// Which types may be sent to each webhook. Taken after `streams` when
    /// both are needed.
    gates: Gates,
}

/// What the completer receives.
enum Done {
    Outcome(JobOutcome),
    Hold(Hold),
    /// A leased job not sent, because its type paused after it was leased.
    Unlease(Unlease),
    /// A stream moved on past events the webhook does not take.
    Read(WebhookId),
}

/// What a lane shares with the sends it spawns.
struct LaneShared {
    webhook: RwLock<Arc<Webhook>>,
    version: std::sync::atomic::AtomicI64,
    limiter: RwLock<Arc<Limiter>>,
}

/// A delivery in a lane's queue, with the epoch of its type's gate when
/// it was queued (`None` for test events, which no pause stops).
struct Queued {
    job: LeasedJob,
    epoch: Option<u64>,
}

struct Lane {
    tx: mpsc::UnboundedSender<Queued>,
    queued: Arc<AtomicUsize>,
    shared: Arc<LaneShared>,
}

pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    /// Deliver the webhooks of `app`, on its clock, with `client`.
    pub fn new(
        app: Tidings,
        client: WebhookClient,
        config: DispatcherConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        // The gates close on the count the store pauses at: core's.
        let gates = Gates::new(app.config.pause_after);
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Self {
            inner: Arc::new(Inner {
                clock: app.clock.clone(),
                app,
                client,
                config,
                metrics,
                held: AtomicUsize::new(0),
                progress: Notify::new(),
                rng: Mutex::new(rng),
                streams: Mutex::new(Streams::default()),
                gates,
            }),
        }
    }

    /// Deliver until `shutdown` is cancelled; then stop leasing, let
    /// requests in flight finish (bounded by the request timeout), and
    /// commit their outcomes. Jobs still queued are left leased and come
    /// back when their lease expires (or at the next start, for SQLite);
    /// live events still queued keep their streams unsettled, so the next
    /// start reads them again.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = self.inner;
        if inner.config.release_leases_on_start {
            match inner.app.release_webhook_leases().await {
                Ok(n) if n > 0 => tracing::info!(jobs = n, "released leases of a previous run"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot release old leases"),
            }
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let completer = tokio::spawn(complete_loop(inner.clone(), done_rx));
        let sends = TaskTracker::new();
        let mut lanes: HashMap<WebhookId, Lane> = HashMap::new();
        let notify = inner.app.webhook_jobs_notify();
        // The next due job, as of the store's `changes` in `due_known`.
        let (mut next_due, mut due_known) = (None, None);

        while !shutdown.is_cancelled() {
            let room = inner
                .config
                .max_held
                .saturating_sub(inner.held.load(Ordering::Acquire));
            if room == 0 {
                tokio::select! {
                    _ = inner.progress.notified() => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            let skip: Vec<WebhookId> = lanes
                .iter()
                .filter(|(_, l)| l.queued.load(Ordering::Acquire) >= inner.config.lane_capacity)
                .map(|(id, _)| *id)
                .collect();
            let now = inner.clock.now();
            // The next due job changes only by a store change, by leasing,
            // or by becoming due; not by new events.
            let changes = inner.app.webhook_changes();
            if due_known != Some(changes) || next_due.is_some_and(|t| t <= now) {
                next_due = match inner.app.next_webhook_job_due().await {
                    Ok(next) => {
                        due_known = Some(changes);
                        next
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the next due job failed");
                        None
                    }
                };
            }
            let jobs_due = next_due.is_some_and(|t| t <= now);
            // Live events first, as they are what receivers wait for; but
            // when jobs are due, they get at least half the room.
            let stream_room = if jobs_due { room / 2 } else { room };
            if let Err(e) = refresh_streams(&inner, changes).await {
                tracing::error!(error = %e, "reading the live streams' heads failed");
            }
            let (streamed, more) = match read_streams(
                &inner,
                stream_room,
                &skip,
                &mut lanes,
                &sends,
                &done_tx,
                &shutdown,
            )
            .await
            {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!(error = %e, "reading live streams failed");
                    (0, false)
                }
            };
            let room = room.saturating_sub(streamed);
            let mut leased = 0;
            if jobs_due && room > 0 {
                let until = now
                    + chrono::Duration::from_std(inner.config.lease_duration).unwrap_or_default();
                let limit = room.min(inner.config.lease_batch as usize) as u32;
                match inner.app.lease_webhook_jobs(now, until, limit, &skip).await {
                    Ok(jobs) => {
                        leased = jobs.len();
                        due_known = None;
                        inner.held.fetch_add(jobs.len(), Ordering::AcqRel);
                        for job in jobs {
                            route(&inner, &mut lanes, job, &sends, &done_tx, &shutdown).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "leasing jobs failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            }
            // A stream that filled its read may have more. One that did
            // not is read again when the store next commits something (a
            // commit since the read has already left a wake-up).
            if more || leased > 0 {
                continue;
            }
            // Nothing (more) to do: sleep until something may be.
            let next = if skip.is_empty() && !jobs_due {
                next_due
            } else {
                None
            };
            let fallback = if skip.is_empty() && !jobs_due {
                Duration::from_secs(60)
            } else {
                Duration::from_millis(100)
            };
            let wake = next.map(|t| inner.clock.sleep_until(t));
            tokio::select! {
                _ = notify.notified() => {}
                _ = inner.progress.notified(), if !skip.is_empty() => {}
                _ = async { match wake { Some(w) => w.await, None => std::future::pending().await } } => {}
                _ = tokio::time::sleep(fallback) => {}
                _ = shutdown.cancelled() => {}
            }
        }

        // Shutdown: lanes stop taking jobs, sends finish, outcomes commit.
        drop(lanes);
        sends.close();
        sends.wait().await;
        drop(done_tx);
        let _ = completer.await;
    }
}

fn release_held(inner: &Inner, n: usize) {
    inner.held.fetch_sub(n, Ordering::AcqRel);
    inner.progress.notify_one();
}

/// The moment a retry is due, for callers that want to show it.
pub fn retry_time(now: Timestamp, delay: Duration) -> Timestamp {
    now + chrono::Duration::from_std(delay).unwrap_or_default()
}
