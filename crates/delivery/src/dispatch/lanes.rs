//! The lanes: routing each delivery to its webhook's lane (loading the
//! webhook, its limits and its gates when they are new or stale), and the
//! lane loop that batches deliveries, waits for a send slot and spawns the
//! sends. Both check every delivery at its type's gate, and hold back the
//! ones whose type paused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tidings_core::work::{Hold, JobKind, LeasedJob, StoreError, Unlease};
use tidings_types::WebhookId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gates::GateMap;
use super::send::send;
use super::{release_held, Done, Inner, Lane, LaneShared, Queued};
use crate::limits::Limiter;

/// Hand a job to its webhook's lane, creating or refreshing the lane (and
/// its gates) when the webhook is new to us or has changed since we loaded
/// it. A job whose type's gate is closed is held instead.
pub(super) async fn route(
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
        let webhook = match inner.app.webhook_for_delivery(job.webhook_id).await {
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
        let states = match inner.app.webhook_pause_states(job.webhook_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, webhook = %job.webhook_id, "cannot load webhook");
                release_held(inner, 1);
                return;
            }
        };
        inner.gates.lock().load(job.webhook_id, &states);
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
    let epoch = if job.kind == JobKind::Test {
        None
    } else {
        let mut gates = inner.gates.lock();
        match gates.admit(job.webhook_id, job.event.event_type) {
            Some(epoch) => Some(epoch),
            None => {
                hold_back(inner, &mut gates, job, done);
                return;
            }
        }
    };
    let lane = lanes.get(&job.webhook_id).expect("lane just ensured");
    lane.queued.fetch_add(1, Ordering::AcqRel);
    if lane.tx.send(Queued { job, epoch }).is_err() {
        lane.queued.fetch_sub(1, Ordering::AcqRel);
        release_held(inner, 1);
    }
}

/// Keep a delivery whose type's gate closed for the resume: a live event
/// becomes a held job, a leased job goes back, held.
pub(super) fn hold_back(
    inner: &Inner,
    gates: &mut GateMap,
    job: LeasedJob,
    done: &mpsc::UnboundedSender<Done>,
) {
    let (webhook, t) = (job.webhook_id, job.event.event_type);
    let held = match job.job_id {
        None => Done::Hold(Hold {
            webhook_id: webhook,
            event_seq: job.event.seq,
            event_type: t,
            at: job.event.timestamp,
        }),
        Some(job_id) => Done::Unlease(Unlease {
            job_id,
            webhook_id: webhook,
            event_type: t,
            at: inner.clock.now(),
        }),
    };
    gates.hold_started(webhook, t);
    if done.send(held).is_err() {
        gates.hold_committed(webhook, t);
        release_held(inner, 1);
    }
}

/// The deliveries of `queued` that may still be sent; the others, whose
/// type's gate closed since they were queued, are held back.
fn sendable(inner: &Inner, queued: Vec<Queued>, done: &mpsc::UnboundedSender<Done>) -> Vec<Queued> {
    let mut gates = inner.gates.lock();
    let mut keep = Vec::with_capacity(queued.len());
    for q in queued {
        let open = q
            .epoch
            .is_none_or(|e| gates.open_since(q.job.webhook_id, q.job.event.event_type, e));
        if open {
            keep.push(q);
        } else {
            hold_back(inner, &mut gates, q.job, done);
        }
    }
    keep
}

async fn lane_loop(
    inner: Arc<Inner>,
    shared: Arc<LaneShared>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
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
        // Checked at the gate before waiting for a send slot, so that a
        // paused type's queue is held at once, and again after it, since
        // the requests that held the slots may be what paused the type.
        let taken = jobs.len();
        let jobs = sendable(&inner, jobs, &done);
        queued.fetch_sub(taken - jobs.len(), Ordering::AcqRel);
        if jobs.is_empty() {
            continue;
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
        let jobs: Vec<LeasedJob> = sendable(&inner, jobs, &done)
            .into_iter()
            .map(|q| q.job)
            .collect();
        if jobs.is_empty() {
            continue;
        }
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
