//! The completer: gathers what the sends and the stream leave to commit
//! (outcomes, holds, jobs given back unsent, how far streams are read) and
//! commits it in batches, then tells the gates what the store decided.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tidings_core::work::{Completion, StoreError};
use tidings_types::{EventType, WebhookId};
use tokio::sync::mpsc;

use super::{release_held, Done, Inner, PauseHook};

/// Most outcomes committed in one transaction.
const COMPLETE_BATCH: usize = 4096;
/// How long the completer waits for more outcomes before committing. Each
/// commit is an fsync of the one writer; at a steady trickle of
/// deliveries, one per outcome would take the writer's time from the
/// events being recorded and leased, which are on the path to the
/// receiver. The outcomes are not: a few milliseconds more before the call
/// log shows an attempt cost no delivery anything.
const COMPLETE_WAIT: Duration = Duration::from_millis(5);

pub(super) async fn complete_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Done>) {
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
        let n = done.outcomes.len() + done.holds.len() + done.unleases.len();
        let done = Arc::new(done);
        let mut tries = 0;
        let committed = loop {
            match inner.app.complete_webhook_jobs(done.clone()).await {
                Ok(summary) => {
                    let mut gates = inner.gates.lock();
                    for (webhook, state) in &summary.active {
                        gates.reopen(*webhook, state);
                    }
                    for (webhook, event_type, _) in &summary.paused {
                        gates.close(*webhook, *event_type);
                    }
                    drop(gates);
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
        {
            // Committed or given up on: either way the store has all it
            // will have of them.
            let mut gates = inner.gates.lock();
            for (webhook, t) in held_types(&done) {
                gates.hold_committed(webhook, t);
            }
        }
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
            Done::Unlease(u) => done.unleases.push(u),
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

/// The (webhook, type) of each hold and job given back in a completion.
fn held_types(done: &Completion) -> impl Iterator<Item = (WebhookId, EventType)> + '_ {
    done.holds
        .iter()
        .map(|h| (h.webhook_id, h.event_type))
        .chain(done.unleases.iter().map(|u| (u.webhook_id, u.event_type)))
}
