//! What the store's own tests share: the time now, and a small message.

/// The time now, and a small message of an account that tracks nothing
/// and says nothing of unsubscribe or a tracking domain: the contract
/// suite's own.
pub(crate) use crate::contract::{message, now};

/// A pause rule that never pauses, for tests that are not about pausing.
pub fn never_pause() -> std::sync::Arc<dyn crate::PauseRule> {
    #[derive(Debug)]
    struct Never;
    impl crate::PauseRule for Never {
        fn pause(&self, _: crate::FailureFacts) -> Option<crate::PauseReason> {
            None
        }
    }
    std::sync::Arc::new(Never)
}

/// A soft-bounce rule that never suppresses, for tests that are not about
/// suppression.
pub fn never_suppress() -> std::sync::Arc<dyn crate::SoftBounceRule> {
    #[derive(Debug)]
    struct Never;
    impl crate::SoftBounceRule for Never {
        fn suppress(&self, _: u32) -> Option<String> {
            None
        }
    }
    std::sync::Arc::new(Never)
}
