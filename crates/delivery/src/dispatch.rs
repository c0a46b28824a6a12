//! The dispatcher: the loop that turns due jobs into HTTP requests.
//!
//! Three kinds of task cooperate, connected by channels:
//!
//! - the **leaser** (the `run` loop itself) reads each webhook's live
//!   stream (the new events of its account, straight from the log) and
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
//! Every event is delivered at least once: if the process dies between the
//! HTTP request and the completer's commit, the job's lease expires, or the
//! stream is read again from where it was settled, and the event is sent
//! again with the same `webhook-id`, which receivers use to dedupe.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tidings_store::{
    AttemptOutcome, AttemptRecord, Completion, Hold, JobKind, JobOutcome, LeasedJob, Next,
    PauseReason, Store, StoreError,
};
use tidings_types::{AccountId, AttemptId, Clock, Timestamp, Webhook, WebhookId};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{AttemptResult, ErrorClass, OutgoingRequest, WebhookClient};
use crate::limits::{LimitPermit, Limiter};
use crate::metrics::Metrics;
use crate::payload;
use crate::retry::{self, RetryPolicy, Verdict};
use crate::sign::SignatureHeaders;

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
    /// Consecutive failures of one type on one webhook that pause it.
    pub pause_after: u32,
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
            pause_after: 100,
            retry: RetryPolicy::default(),
            release_leases_on_start: false,
            seed: None,
            on_pause: None,
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
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
}

/// The live streams, and the store's `changes` they were read at.
#[derive(Default)]
struct Streams {
    by_webhook: HashMap<WebhookId, Stream>,
    read_at: Option<u64>,
    /// How far the log has been checked for accounts with new events.
    log_seen: Option<i64>,
}

/// One webhook's live stream in memory.
struct Stream {
    account: AccountId,
    /// It may have events not read yet: its account recorded some since
    /// it was last read to the end (or it is new to this dispatcher).
    behind: bool,
    /// The last seq read: everything up to it is open, settled, or of a
    /// type the webhook does not take.
    read: i64,
    /// Seqs read whose outcome (or hold) is not yet committed.
    open: BTreeSet<i64>,
    /// What the store has as settled.
    settled: i64,
}

impl Stream {
    /// How far the stream may be settled: up to its first open event.
    fn settle_point(&self) -> i64 {
        self.open.first().map_or(self.read, |first| first - 1)
    }
}

/// What the completer receives.
enum Done {
    Outcome(JobOutcome),
    Hold(Hold),
    /// A stream moved on past events the webhook does not take.
    Read(WebhookId),
}

/// What a lane shares with the sends it spawns.
struct LaneShared {
    webhook: RwLock<Arc<Webhook>>,
    version: std::sync::atomic::AtomicI64,
    limiter: RwLock<Arc<Limiter>>,
}

struct Lane {
    tx: mpsc::UnboundedSender<LeasedJob>,
    queued: Arc<AtomicUsize>,
    shared: Arc<LaneShared>,
}

pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        client: WebhookClient,
        config: DispatcherConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                client,
                config,
                metrics,
                held: AtomicUsize::new(0),
                progress: Notify::new(),
                rng: Mutex::new(rng),
                streams: Mutex::new(Streams::default()),
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
            match inner.store.release_leases(inner.clock.now()).await {
                Ok(n) if n > 0 => tracing::info!(jobs = n, "released leases of a previous run"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot release old leases"),
            }
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let completer = tokio::spawn(complete_loop(inner.clone(), done_rx));
        let sends = TaskTracker::new();
        let mut lanes: HashMap<WebhookId, Lane> = HashMap::new();
        let notify = inner.store.jobs_notify();
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
            let changes = inner.store.changes();
            if due_known != Some(changes) || next_due.is_some_and(|t| t <= now) {
                next_due = match inner.store.next_due().await {
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
                match inner.store.lease_jobs(now, until, limit, &skip).await {
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

/// Read the live streams of the webhooks not in `skip`, up to `room`
/// events in all, and route them: deliveries to lanes, events to hold
/// (see [`tidings_store::StreamItem::hold`]) to the completer. Returns how many events were read
/// (including those of types a webhook does not take, which only move its
/// stream on), and whether a stream may have more than it gave.
async fn read_streams(
    inner: &Arc<Inner>,
    room: usize,
    skip: &[WebhookId],
    lanes: &mut HashMap<WebhookId, Lane>,
    sends: &TaskTracker,
    done: &mpsc::UnboundedSender<Done>,
    shutdown: &CancellationToken,
) -> Result<(usize, bool), StoreError> {
    // One read finds which accounts recorded events, so that an event
    // costs a read of its own account's streams only, however many
    // webhooks there are.
    let seen = inner.streams.lock().expect("streams lock").log_seen;
    let activity = inner.store.log_activity(seen.unwrap_or(i64::MAX)).await?;
    let mut order: Vec<(WebhookId, i64)> = {
        let mut streams = inner.streams.lock().expect("streams lock");
        let active: HashSet<AccountId> = activity.accounts.into_iter().collect();
        for s in streams.by_webhook.values_mut() {
            s.behind |= active.contains(&s.account);
        }
        streams.log_seen = Some(activity.head);
        streams
            .by_webhook
            .iter()
            .filter(|(w, s)| s.behind && !skip.contains(w))
            .map(|(w, s)| (*w, s.read))
            .collect()
    };
    // Fair among webhooks when room is short: a different one goes first
    // each time.
    if order.len() > 1 {
        let turn = inner.held.load(Ordering::Relaxed) % order.len();
        order.rotate_left(turn);
    }
    let (mut total, mut more) = (0, false);
    for (webhook, after) in order {
        let left = room.saturating_sub(total);
        if left == 0 {
            break;
        }
        let limit = left.min(inner.config.lease_batch as usize) as u32;
        let items = inner.store.stream(webhook, after, limit).await?;
        let n = items.len();
        let full = n == limit as usize;
        more |= full;
        total += n;
        let mut deliver = Vec::new();
        let mut holds = Vec::new();
        {
            let mut streams = inner.streams.lock().expect("streams lock");
            let Some(stream) = streams.by_webhook.get_mut(&webhook) else {
                continue; // deleted meanwhile
            };
            // A read that came back short reached the end of the log as it
            // was at the activity check, or later; anything newer shows in
            // the next check.
            stream.behind = full;
            for item in items {
                stream.read = item.seq;
                let Some(job) = item.job else { continue };
                stream.open.insert(item.seq);
                if item.hold {
                    holds.push(Hold {
                        webhook_id: webhook,
                        event_seq: item.seq,
                        event_type: job.event.event_type,
                        at: job.event.timestamp,
                    });
                } else {
                    deliver.push(job);
                }
            }
        }
        inner
            .held
            .fetch_add(deliver.len() + holds.len(), Ordering::AcqRel);
        if n > 0 && deliver.is_empty() && holds.is_empty() {
            let _ = done.send(Done::Read(webhook));
        }
        for h in holds {
            if done.send(Done::Hold(h)).is_err() {
                release_held(inner, 1);
            }
        }
        for job in deliver {
            route(inner, lanes, job, sends, done, shutdown).await;
        }
    }
    Ok((total, more))
}

/// Read the stream heads again if a webhook changed since they were read:
/// new webhooks start where the store has them settled, deleted ones go,
/// and the others keep their place in memory.
async fn refresh_streams(inner: &Inner, changed: u64) -> Result<(), StoreError> {
    if inner.streams.lock().expect("streams lock").read_at == Some(changed) {
        return Ok(());
    }
    let heads = inner.store.stream_heads().await?;
    let mut streams = inner.streams.lock().expect("streams lock");
    let live: HashSet<WebhookId> = heads.iter().map(|h| h.webhook_id).collect();
    streams.by_webhook.retain(|w, _| live.contains(w));
    for h in heads {
        streams.by_webhook.entry(h.webhook_id).or_insert(Stream {
            account: h.account_id,
            behind: true,
            read: h.settled,
            open: BTreeSet::new(),
            settled: h.settled,
        });
    }
    streams.read_at = Some(changed);
    Ok(())
}

/// Hand a job to its webhook's lane, creating or refreshing the lane when
/// the webhook is new to us or has changed since we loaded it.
async fn route(
    inner: &Arc<Inner>,
    lanes: &mut HashMap<WebhookId, Lane>,
    job: LeasedJob,
    sends: &TaskTracker,
    done: &mpsc::UnboundedSender<Done>,
    shutdown: &CancellationToken,
) {
    let stale = match lanes.get(&job.webhook_id) {
        Some(l) => l.shared.version.load(Ordering::Acquire) < job.webhook_version,
        None => true,
    };
    if stale {
        let webhook = match inner.store.load_webhook(job.webhook_id).await {
            Ok(w) => Arc::new(w),
            Err(StoreError::NotFound) => {
                // Deleted meanwhile; its jobs went with it.
                release_held(inner, 1);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, webhook = %job.webhook_id, "cannot load webhook");
                release_held(inner, 1);
                return;
            }
        };
        let limiter = Arc::new(Limiter::for_webhook(&webhook.settings));
        match lanes.get(&job.webhook_id) {
            Some(l) => {
                *l.shared.webhook.write().expect("lane lock") = webhook;
                *l.shared.limiter.write().expect("lane lock") = limiter;
                l.shared
                    .version
                    .store(job.webhook_version, Ordering::Release);
            }
            None => {
                let shared = Arc::new(LaneShared {
                    webhook: RwLock::new(webhook),
                    limiter: RwLock::new(limiter),
                    version: std::sync::atomic::AtomicI64::new(job.webhook_version),
                });
                let (tx, rx) = mpsc::unbounded_channel();
                let queued = Arc::new(AtomicUsize::new(0));
                tokio::spawn(lane_loop(
                    inner.clone(),
                    shared.clone(),
                    rx,
                    queued.clone(),
                    sends.clone(),
                    done.clone(),
                    shutdown.clone(),
                ));
                lanes.insert(job.webhook_id, Lane { tx, queued, shared });
            }
        }
    }
    let lane = lanes.get(&job.webhook_id).expect("lane just ensured");
    lane.queued.fetch_add(1, Ordering::AcqRel);
    if lane.tx.send(job).is_err() {
        lane.queued.fetch_sub(1, Ordering::AcqRel);
        release_held(inner, 1);
    }
}

fn release_held(inner: &Inner, n: usize) {
    inner.held.fetch_sub(n, Ordering::AcqRel);
    inner.progress.notify_one();
}

async fn lane_loop(
    inner: Arc<Inner>,
    shared: Arc<LaneShared>,
    mut rx: mpsc::UnboundedReceiver<LeasedJob>,
    queued: Arc<AtomicUsize>,
    sends: TaskTracker,
    done: mpsc::UnboundedSender<Done>,
    shutdown: CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let batch = shared.webhook.read().expect("lane lock").settings.batch;
        if let Some(b) = batch.filter(|b| b.max_events > 1) {
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(b.max_wait_ms.into());
            while jobs.len() < b.max_events as usize {
                tokio::select! {
                    j = rx.recv() => match j { Some(j) => jobs.push(j), None => break },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        let limiter = shared.limiter.read().expect("lane lock").clone();
        let permit = tokio::select! {
            p = limiter.acquire() => p,
            _ = shutdown.cancelled() => {
                // Left leased; they come back when the lease ends.
                release_held(&inner, jobs.len());
                break;
            }
        };
        queued.fetch_sub(jobs.len(), Ordering::AcqRel);
        let webhook = shared.webhook.read().expect("lane lock").clone();
        sends.spawn(send(inner.clone(), webhook, jobs, permit, done.clone()));
    }
    // Anything still queued at shutdown stays leased.
    let mut left = 0;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        release_held(&inner, left);
    }
}

async fn send(
    inner: Arc<Inner>,
    webhook: Arc<Webhook>,
    mut jobs: Vec<LeasedJob>,
    permit: LimitPermit,
    done: mpsc::UnboundedSender<Done>,
) {
    let started = inner.clock.now();
    // The data goes out as the log keeps it, unless the format or the
    // field selection needs its fields. It was checked to be JSON when it
    // was read, so it parses.
    if !payload::sends_stored_data(&webhook.settings) {
        for j in &mut jobs {
            if let Err(e) = j.parse_data() {
                tracing::error!(error = %e, event = %j.event.id, "event data does not parse");
            }
        }
    }
    let events: Vec<_> = jobs
        .iter()
        .map(|j| payload::Outgoing {
            event: &j.event,
            stored_data: j.stored_data.as_deref(),
        })
        .collect();
    let result = match payload::build_outgoing(&events, &webhook.settings) {
        Ok(payload) => {
            let msg_id = match jobs.as_slice() {
                [one] => one.event.id.to_string(),
                many => batch_id(many),
            };
            let headers = SignatureHeaders::new(
                &msg_id,
                started.timestamp(),
                &payload.signed,
                &webhook.signing_secrets(started),
            );
            let req = OutgoingRequest {
                payload,
                signature: headers,
                headers: webhook.settings.headers.clone(),
            };
            inner.client.send(req).await
        }
        Err(e) => AttemptResult {
            status: None,
            error: Some(ErrorClass::Other),
            detail: Some(e.to_string()),
            duration: Duration::ZERO,
            response_snippet: String::new(),
            retry_after: None,
        },
    };
    drop(permit);
    let finished = inner.clock.now();
    let verdict = retry::classify(result.status, result.retry_after, finished);
    let delivered = verdict == Verdict::Delivered;
    for job in jobs {
        inner.metrics.record_attempt(delivered);
        let attempt_no = job.attempts + 1;
        let next = match verdict {
            Verdict::Delivered => Next::Done,
            Verdict::Gone => Next::Gone,
            Verdict::Retry { after } => {
                let delay = {
                    let mut rng = inner.rng.lock().expect("rng lock");
                    inner.config.retry.next_delay(attempt_no, after, &mut *rng)
                };
                match delay {
                    Some(d) => {
                        Next::RetryAt(finished + chrono::Duration::from_std(d).unwrap_or_default())
                    }
                    None => Next::Exhausted,
                }
            }
        };
        if delivered && job.kind == JobKind::Live && job.attempts == 0 {
            let latency = (finished - job.event.timestamp)
                .to_std()
                .unwrap_or_default();
            inner
                .metrics
                .delivery_latency
                .observe(latency.as_secs_f64());
        }
        let outcome = JobOutcome {
            job_id: job.job_id,
            event_seq: job.event.seq,
            account_id: job.event.account_id,
            counts: job.kind != JobKind::Test,
            next,
            attempt: AttemptRecord {
                id: AttemptId::new(),
                webhook_id: webhook.id,
                event_id: job.event.id,
                event_type: job.event.event_type,
                at: started,
                url: webhook.settings.url.to_string(),
                outcome: if delivered {
                    AttemptOutcome::Delivered
                } else {
                    AttemptOutcome::Failed
                },
                status_code: result.status,
                error: result.error.map(|e| e.as_str().to_string()),
                duration_ms: result.duration.as_millis().min(u32::MAX as u128) as u32,
                response: match (&result.status, &result.detail) {
                    (None, Some(detail)) => detail.clone(),
                    _ => result.response_snippet.clone(),
                },
                attempt: attempt_no,
                next_attempt_at: match next {
                    Next::RetryAt(t) => Some(t),
                    _ => None,
                },
            },
        };
        if done.send(Done::Outcome(outcome)).is_err() {
            release_held(&inner, 1);
        }
    }
}

/// Most outcomes committed in one transaction.
const COMPLETE_BATCH: usize = 4096;
/// How long the completer waits for more outcomes before committing. Each
/// commit is an fsync of the one writer; at a steady trickle of
/// deliveries, one per outcome would take the writer's time from the
/// events being recorded and leased, which are on the path to the
/// receiver. The outcomes are not: a few milliseconds more before the call
/// log shows an attempt cost no delivery anything.
const COMPLETE_WAIT: Duration = Duration::from_millis(5);

async fn complete_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Done>) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + COMPLETE_WAIT;
        while batch.len() < COMPLETE_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(o)) => batch.push(o),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        let (done, closed) = settle(&inner, std::mem::take(&mut batch));
        let n = done.outcomes.len() + done.holds.len();
        let done = Arc::new(done);
        let mut tries = 0;
        let committed = loop {
            match inner
                .store
                .complete_jobs(done.clone(), inner.config.pause_after)
                .await
            {
                Ok(summary) => {
                    for (webhook, event_type, reason) in summary.paused {
                        tracing::warn!(%webhook, %event_type, reason = reason.as_str(),
                            "paused delivery of an event type");
                        if let Some(PauseHook(f)) = &inner.config.on_pause {
                            f(webhook, event_type, reason);
                        }
                    }
                    break true;
                }
                Err(e) if tries < 5 && !matches!(e, StoreError::Closed) => {
                    tries += 1;
                    tracing::error!(error = %e, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    // Leased jobs stay leased and will be delivered again;
                    // live events stay open, so their streams are never
                    // settled past them and they are read again at the
                    // next start.
                    tracing::error!(error = %e, jobs = n, "giving up recording delivery outcomes");
                    break false;
                }
            }
        };
        let mut streams = inner.streams.lock().expect("streams lock");
        if committed {
            for (webhook, seq) in &done.settled {
                if let Some(s) = streams.by_webhook.get_mut(webhook) {
                    s.settled = s.settled.max(*seq);
                }
            }
        } else {
            for (webhook, seq) in closed {
                if let Some(s) = streams.by_webhook.get_mut(&webhook) {
                    s.open.insert(seq);
                }
            }
        }
        drop(streams);
        release_held(&inner, n);
    }
}

/// Turn a batch of what the completer received into a [`Completion`]:
/// close the live events it settles and work out how far their streams
/// may now be settled. Also returns the events it closed, to reopen if the
/// commit fails.
fn settle(inner: &Inner, batch: Vec<Done>) -> (Completion, Vec<(WebhookId, i64)>) {
    let mut done = Completion::default();
    let mut closed = Vec::new();
    let mut touched = HashSet::new();
    for d in batch {
        match d {
            Done::Outcome(o) => {
                if o.job_id.is_none() {
                    closed.push((o.attempt.webhook_id, o.event_seq));
                }
                done.outcomes.push(o);
            }
            Done::Hold(h) => {
                closed.push((h.webhook_id, h.event_seq));
                done.holds.push(h);
            }
            Done::Read(webhook) => {
                touched.insert(webhook);
            }
        }
    }
    let mut streams = inner.streams.lock().expect("streams lock");
    for (webhook, seq) in &closed {
        if let Some(s) = streams.by_webhook.get_mut(webhook) {
            s.open.remove(seq);
            touched.insert(*webhook);
        }
    }
    for webhook in touched {
        let Some(s) = streams.by_webhook.get(&webhook) else {
            continue;
        };
        let point = s.settle_point();
        if point > s.settled {
            done.settled.push((webhook, point));
        }
    }
    (done, closed)
}

/// The moment a retry is due, for callers that want to show it.
pub fn retry_time(now: Timestamp, delay: Duration) -> Timestamp {
    now + chrono::Duration::from_std(delay).unwrap_or_default()
}

/// A batch's `webhook-id`: derived from the events it carries, so a retry
/// of the same batch has the same id and receivers can drop duplicates.
fn batch_id(jobs: &[LeasedJob]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for j in jobs {
        h.update(j.event.id.to_string().as_bytes());
    }
    let digest = h.finalize();
    format!("batch_{}", hex::encode(&digest[..16]))
}
