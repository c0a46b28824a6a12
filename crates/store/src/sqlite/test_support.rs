//! What the store's own tests share: the time now, and a small message.

use tidings_types::{AccountId, MessageId};

use crate::{NewMessage, Source};

pub fn now() -> tidings_types::Timestamp {
    tidings_types::time::trunc(std::time::SystemTime::now().into())
}

/// A small message of `account` that tracks nothing and says nothing of
/// unsubscribe or a tracking domain.
pub fn message(account: AccountId) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        account_id: account,
        created_at: now(),
        source: Source::Http,
        mail_from: "app@x.test".into(),
        from: "app@x.test".into(),
        subject: None,
        smtp_message_id: "<m@x>".into(),
        custom_id: None,
        group: None,
        tags: vec![],
        track_opens: false,
        track_clicks: false,
        track_unsubscribe: None,
        tracking_base: None,
        raw: bytes::Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n"),
        idempotency: None,
    }
}

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
