//! Which event types the dispatcher may send to each webhook right now.
//!
//! The store pauses a type when it commits the failure that reaches the
//! threshold (or a `410`), but by then the dispatcher may hold many more
//! deliveries of that type: queued in the webhook's lane, waiting for a
//! send slot, or about to be leased. A *gate* per (webhook, type) is what
//! stops them. It counts the type's consecutive failures as the sends
//! finish, in the order their outcomes go to the completer (so in the
//! order the store counts them), and closes on the failure that pauses
//! the type, before that failure is even committed. A delivery is checked
//! at the gate when it is queued and again just before its request
//! starts, after it has a send slot; one that finds the gate closed, or
//! closed and opened again since it was queued (its *epoch* is old), is
//! held instead: a live event becomes a held job, a leased job goes back.
//! Only requests already started finish.
//!
//! The gate opens again when the store says the type is no longer paused:
//! when the webhook is loaded again after a change or a resume (both move
//! its version), or when a hold the completer commits finds its type
//! resumed.
//!
//! The gate also counts the holds it has handed to the completer and the
//! ones committed, so that the live stream never sends an event past a
//! hold of its type that the store did not yet have when the stream was
//! read (see `read_streams`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tidings_core::work::{FailureFacts, PauseState};
use tidings_types::{EventType, WebhookId};

/// Every gate of a dispatcher.
pub(super) struct Gates {
    map: Mutex<GateMap>,
}

pub(super) struct GateMap {
    pause_after: u32,
    gates: HashMap<(WebhookId, EventType), Gate>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Gate {
    /// The webhook takes the type, so its failures count and may pause it
    /// (as in the store, which keeps state only for the types taken).
    tracked: bool,
    closed: bool,
    failures: u32,
    /// Moves each time the gate closes.
    epoch: u64,
    /// Holds (and jobs given back) handed to the completer, and how many
    /// of them it has committed.
    holds: u64,
    holds_committed: u64,
}

impl Gates {
    pub(super) fn new(pause_after: u32) -> Self {
        Self {
            map: Mutex::new(GateMap {
                pause_after,
                gates: HashMap::new(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, GateMap> {
        self.map.lock().expect("gates lock")
    }
}

impl GateMap {
    fn gate(&mut self, webhook: WebhookId, t: EventType) -> &mut Gate {
        self.gates.entry((webhook, t)).or_default()
    }

    /// Take the store's word for the webhook's types: which are paused,
    /// and their failure counts. Types it does not list are not taken.
    pub(super) fn load(&mut self, webhook: WebhookId, states: &[PauseState]) {
        for t in EventType::ALL {
            let g = self.gate(webhook, t);
            g.tracked = false;
            g.closed = false;
            g.failures = 0;
        }
        for s in states {
            self.set(webhook, s);
        }
    }

    /// Take the store's word for one type.
    pub(super) fn set(&mut self, webhook: WebhookId, s: &PauseState) {
        let g = self.gate(webhook, s.event_type);
        g.tracked = true;
        if s.paused && !g.closed {
            g.epoch += 1;
        }
        g.closed = s.paused;
        g.failures = s.consecutive_failures;
    }

    /// A hold the completer committed found the type not paused: resumed
    /// since its gate closed, if it is closed. An open gate keeps its own
    /// count, which may include failures not committed yet.
    pub(super) fn reopen(&mut self, webhook: WebhookId, s: &PauseState) {
        let g = self.gate(webhook, s.event_type);
        if g.closed && g.tracked {
            g.closed = false;
            g.failures = s.consecutive_failures;
        }
    }

    /// The store paused the type.
    pub(super) fn close(&mut self, webhook: WebhookId, t: EventType) {
        let g = self.gate(webhook, t);
        if !g.closed {
            g.closed = true;
            g.epoch += 1;
        }
    }

    /// The epoch to queue a delivery of the type with, or `None` if the
    /// gate is closed and it must be held.
    pub(super) fn admit(&mut self, webhook: WebhookId, t: EventType) -> Option<u64> {
        let g = self.gate(webhook, t);
        (!g.closed).then_some(g.epoch)
    }

    /// Whether a delivery queued at `epoch` may still be sent.
    pub(super) fn open_since(&mut self, webhook: WebhookId, t: EventType, epoch: u64) -> bool {
        let g = self.gate(webhook, t);
        !g.closed && g.epoch == epoch
    }

    /// Count one attempt's outcome as the store will, and close the gate
    /// when the domain's pause rule says the store will pause the type.
    pub(super) fn record(&mut self, webhook: WebhookId, t: EventType, delivered: bool, gone: bool) {
        let pause_after = self.pause_after;
        let g = self.gate(webhook, t);
        if !g.tracked {
            return;
        }
        if delivered {
            g.failures = 0;
            return;
        }
        g.failures = g.failures.saturating_add(1);
        let facts = FailureFacts {
            consecutive_failures: g.failures,
            gone,
        };
        if tidings_core::rules::pause(facts, pause_after).is_some() && !g.closed {
            g.closed = true;
            g.epoch += 1;
        }
    }

    /// A hold of the type goes to the completer.
    pub(super) fn hold_started(&mut self, webhook: WebhookId, t: EventType) {
        self.gate(webhook, t).holds += 1;
    }

    /// The completer is done with a hold (committed, or given up on).
    pub(super) fn hold_committed(&mut self, webhook: WebhookId, t: EventType) {
        self.gate(webhook, t).holds_committed += 1;
    }

    /// How many holds of each type of the webhook are committed: taken
    /// before reading its stream.
    pub(super) fn committed(&mut self, webhook: WebhookId) -> [u64; EventType::ALL.len()] {
        EventType::ALL.map(|t| {
            self.gates
                .get(&(webhook, t))
                .map_or(0, |g| g.holds_committed)
        })
    }

    /// Whether a hold of the type was started that was not committed by
    /// the time of `committed` (taken with [`GateMap::committed`]): one the
    /// store may not have had when the stream was read.
    pub(super) fn hold_pending(
        &mut self,
        webhook: WebhookId,
        t: EventType,
        committed: &[u64; EventType::ALL.len()],
    ) -> bool {
        let i = EventType::ALL
            .iter()
            .position(|x| *x == t)
            .expect("every type is in ALL");
        self.gates
            .get(&(webhook, t))
            .is_some_and(|g| g.holds > committed[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: EventType, paused: bool, failures: u32) -> PauseState {
        PauseState {
            event_type: t,
            paused,
            consecutive_failures: failures,
        }
    }

    #[test]
    fn the_failure_that_reaches_the_threshold_closes_the_gate_and_a_success_resets_the_count() {
        let g = Gates::new(3);
        let w = WebhookId::new();
        let mut m = g.lock();
        m.load(w, &[state(EventType::Sent, false, 1)]);
        let epoch = m.admit(w, EventType::Sent).unwrap();
        m.record(w, EventType::Sent, false, false);
        m.record(w, EventType::Sent, true, false);
        m.record(w, EventType::Sent, false, false);
        m.record(w, EventType::Sent, false, false);
        assert!(
            m.open_since(w, EventType::Sent, epoch),
            "two since the success"
        );
        m.record(w, EventType::Sent, false, false);
        assert!(
            !m.open_since(w, EventType::Sent, epoch),
            "the third closes it"
        );
        assert_eq!(m.admit(w, EventType::Sent), None);
        // Reopened by the store (a resume): what was queued before stays
        // held; what is queued now goes.
        m.set(w, &state(EventType::Sent, false, 0));
        assert!(!m.open_since(w, EventType::Sent, epoch));
        let now = m.admit(w, EventType::Sent).unwrap();
        assert!(m.open_since(w, EventType::Sent, now));
    }

    #[test]
    fn gone_closes_at_once_and_untaken_types_never_close() {
        let g = Gates::new(100);
        let w = WebhookId::new();
        let mut m = g.lock();
        m.load(w, &[state(EventType::Open, false, 0)]);
        m.record(w, EventType::Open, false, true);
        assert_eq!(m.admit(w, EventType::Open), None);
        for _ in 0..200 {
            m.record(w, EventType::Click, false, true);
        }
        assert!(
            m.admit(w, EventType::Click).is_some(),
            "the store keeps no state for it"
        );
    }

    #[test]
    fn a_hold_is_pending_until_committed_before_the_read() {
        let g = Gates::new(100);
        let w = WebhookId::new();
        let mut m = g.lock();
        let before = m.committed(w);
        assert!(!m.hold_pending(w, EventType::Sent, &before));
        m.hold_started(w, EventType::Sent);
        assert!(m.hold_pending(w, EventType::Sent, &before));
        m.hold_committed(w, EventType::Sent);
        assert!(
            m.hold_pending(w, EventType::Sent, &before),
            "committed after the read began: the read may not have seen it"
        );
        let after = m.committed(w);
        assert!(!m.hold_pending(w, EventType::Sent, &after));
        assert!(!m.hold_pending(w, EventType::Open, &after));
    }
}
