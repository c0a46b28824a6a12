//! Reading: the live streams of the webhooks this dispatcher delivers
//! for, in memory — where each has been read to, which of its events are
//! open (read, outcome not yet committed), how far the store has it
//! settled — and the reads that turn new events of the log into
//! deliveries (routed to lanes) or holds (sent to the completer).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tidings_core::work::{Hold, StoreError};
use tidings_types::{AccountId, WebhookId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lanes::route;
use super::{release_held, Done, Inner, Lane};

/// The live streams, and the store's `changes` they were read at.
#[derive(Default)]
pub(super) struct Streams {
    pub(super) by_webhook: HashMap<WebhookId, Stream>,
    pub(super) read_at: Option<u64>,
    /// How far the log has been checked for accounts with new events.
    pub(super) log_seen: Option<i64>,
}

/// One webhook's live stream in memory.
pub(super) struct Stream {
    pub(super) account: AccountId,
    /// It may have events not read yet: its account recorded some since
    /// it was last read to the end (or it is new to this dispatcher).
    pub(super) behind: bool,
    /// The last seq read: everything up to it is open, settled, or of a
    /// type the webhook does not take.
    pub(super) read: i64,
    /// Seqs read whose outcome (or hold) is not yet committed.
    pub(super) open: BTreeSet<i64>,
    /// What the store has as settled.
    pub(super) settled: i64,
}

impl Stream {
    /// How far the stream may be settled: up to its first open event.
    pub(super) fn settle_point(&self) -> i64 {
        self.open.first().map_or(self.read, |first| first - 1)
    }
}

/// Read the live streams of the webhooks not in `skip`, up to `room`
/// events in all, and route them: deliveries to lanes, events to hold
/// (see [`tidings_core::work::StreamItem::hold`]) to the completer. Returns how many events were read
/// (including those of types a webhook does not take, which only move its
/// stream on), and whether a stream may have more than it gave.
pub(super) async fn read_streams(
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
    let activity = inner.app.log_activity(seen.unwrap_or(i64::MAX)).await?;
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
        // The store's word on what to hold covers the holds it had when
        // it was read; one still on its way to it must not be overtaken.
        let committed = inner.gates.lock().committed(webhook);
        let items = inner.app.read_stream(webhook, after, limit).await?;
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
            let mut gates = inner.gates.lock();
            // A read that came back short reached the end of the log as it
            // was at the activity check, or later; anything newer shows in
            // the next check.
            stream.behind = full;
            for item in items {
                stream.read = item.seq;
                let Some(job) = item.job else { continue };
                stream.open.insert(item.seq);
                let t = job.event.event_type;
                if item.hold || gates.hold_pending(webhook, t, &committed) {
                    gates.hold_started(webhook, t);
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
                inner.gates.lock().hold_committed(webhook, h.event_type);
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
pub(super) async fn refresh_streams(inner: &Inner, changed: u64) -> Result<(), StoreError> {
    if inner.streams.lock().expect("streams lock").read_at == Some(changed) {
        return Ok(());
    }
    let heads = inner.app.stream_heads().await?;
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
