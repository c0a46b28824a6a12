//! The product's rules for delivery outcomes: when a webhook's event type
//! pauses, and when soft bounces suppress an address.
//!
//! They are pure functions of what the store counted. The store asks them
//! inside the transaction that records the outcome (through the
//! [`PauseRule`] and [`SoftBounceRule`] it is handed) and applies the
//! answer there, so the decision is atomic with the count it rests on,
//! while the threshold and the reason stay the domain's.

use tidings_store::{FailureFacts, PauseReason, PauseRule, SoftBounceRule};

/// The reason recorded for an address suppressed by soft bounces.
pub const SOFT_BOUNCES: &str = "soft_bounces";

/// Whether a failed attempt pauses its (webhook, event type): a `410 Gone`
/// always does; otherwise `pause_after` failures in a row do.
pub fn pause(facts: FailureFacts, pause_after: u32) -> Option<PauseReason> {
    if facts.gone {
        Some(PauseReason::Gone)
    } else if facts.consecutive_failures >= pause_after {
        Some(PauseReason::ConsecutiveFailures)
    } else {
        None
    }
}

/// Whether `consecutive` soft bounces in a row suppress the address.
pub fn suppress_soft_bounces(consecutive: u32, limit: u32) -> bool {
    consecutive >= limit
}

/// [`pause`] with the operator's threshold, for the store.
#[derive(Debug, Clone, Copy)]
pub struct PauseAfter(pub u32);

impl PauseRule for PauseAfter {
    fn pause(&self, facts: FailureFacts) -> Option<PauseReason> {
        pause(facts, self.0)
    }
}

/// [`suppress_soft_bounces`] with the operator's limit, for the store.
#[derive(Debug, Clone, Copy)]
pub struct SoftBounceLimit(pub u32);

impl SoftBounceRule for SoftBounceLimit {
    fn suppress(&self, consecutive: u32) -> Option<String> {
        suppress_soft_bounces(consecutive, self.0).then(|| SOFT_BOUNCES.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(consecutive_failures: u32, gone: bool) -> FailureFacts {
        FailureFacts {
            consecutive_failures,
            gone,
        }
    }

    #[test]
    fn failures_pause_once_they_reach_the_threshold() {
        assert_eq!(pause(failed(1, false), 3), None);
        assert_eq!(pause(failed(2, false), 3), None);
        assert_eq!(
            pause(failed(3, false), 3),
            Some(PauseReason::ConsecutiveFailures)
        );
        assert_eq!(
            pause(failed(7, false), 3),
            Some(PauseReason::ConsecutiveFailures)
        );
    }

    #[test]
    fn gone_pauses_at_the_first_failure() {
        assert_eq!(pause(failed(1, true), 100), Some(PauseReason::Gone));
        assert_eq!(pause(failed(100, true), 100), Some(PauseReason::Gone));
    }

    #[test]
    fn soft_bounces_suppress_at_the_limit() {
        assert!(!suppress_soft_bounces(1, 3));
        assert!(!suppress_soft_bounces(2, 3));
        assert!(suppress_soft_bounces(3, 3));
        assert!(suppress_soft_bounces(4, 3));
    }

    #[test]
    fn the_store_rules_answer_as_the_functions() {
        assert_eq!(
            PauseAfter(2).pause(failed(2, false)),
            Some(PauseReason::ConsecutiveFailures)
        );
        assert_eq!(PauseAfter(2).pause(failed(1, false)), None);
        assert_eq!(SoftBounceLimit(2).suppress(1), None);
        assert_eq!(
            SoftBounceLimit(2).suppress(2).as_deref(),
            Some("soft_bounces")
        );
    }
}
