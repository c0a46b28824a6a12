//! Unit tests of what one outbound reply means.

use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const DAYS3: Duration = Duration::from_secs(3 * 86_400);

fn reply(code: u16, text: &str) -> ReplyFacts<'_> {
    ReplyFacts {
        code,
        text,
        remote: Some("mx.example.com"),
        tls: true,
    }
}

fn fresh() -> History {
    History {
        attempts: 0,
        first_attempt_at: None,
    }
}

#[test]
fn an_accepted_message_is_sent_with_the_reply_and_the_attempt() {
    let now = at("2026-01-01T00:00:00Z");
    let d = decide(reply(250, "2.0.0 ok queued"), fresh(), now, DAYS3);
    assert_eq!(d.status, RecipientStatus::Sent);
    assert_eq!(d.response, "250 2.0.0 ok queued");
    assert_eq!(
        d.event,
        OutcomeEvent::Sent {
            remote_mta: Some("mx.example.com".into()),
            smtp_response: "250 2.0.0 ok queued".into(),
            tls: true,
            attempt: 1,
        }
    );
    assert_eq!(
        (d.retry_at, d.suppress, d.soft_failure),
        (None, None, false)
    );
}

#[test]
fn a_temporary_failure_is_retried_on_the_backoff_schedule() {
    let now = at("2026-01-01T00:00:00Z");
    let history = History {
        attempts: 2,
        first_attempt_at: Some(now),
    };
    let d = decide(reply(451, "4.7.1 try later"), history, now, DAYS3);
    let next = now + chrono::Duration::seconds(BACKOFF[2] as i64);
    assert_eq!(d.status, RecipientStatus::Deferred);
    assert_eq!(d.retry_at, Some(next));
    assert_eq!(
        d.event,
        OutcomeEvent::Deferred {
            remote_mta: Some("mx.example.com".into()),
            smtp_response: "451 4.7.1 try later".into(),
            attempt: 3,
            next_attempt_at: next,
        }
    );
    assert!(!d.soft_failure);
}

#[test]
fn a_deferral_past_the_maximum_age_bounces_softly_as_expired() {
    let first = at("2026-01-01T00:00:00Z");
    let now = first + chrono::Duration::seconds(3 * 86_400 - 60);
    let history = History {
        attempts: 40,
        first_attempt_at: Some(first),
    };
    let facts = ReplyFacts {
        remote: None,
        ..reply(421, "4.4.2 connection lost")
    };
    let d = decide(facts, history, now, DAYS3);
    assert_eq!(d.status, RecipientStatus::Bounced);
    assert!(d.soft_failure);
    assert_eq!(d.suppress, None);
    assert_eq!(
        d.event,
        OutcomeEvent::Bounce {
            bounce_type: BounceType::Soft,
            status: "4.4.7".into(),
            reason: "expired".into(),
            diagnostic: "421 4.4.2 connection lost".into(),
            remote_mta: None,
            source: BounceSource::Smtp,
        }
    );
}

#[test]
fn a_permanent_failure_bounces_hard_and_suppresses() {
    let now = at("2026-01-01T00:00:00Z");
    let d = decide(reply(550, "5.1.1 no such user"), fresh(), now, DAYS3);
    assert_eq!(d.status, RecipientStatus::Bounced);
    assert_eq!(d.suppress, Some(SuppressionReason::HardBounce));
    let OutcomeEvent::Bounce {
        bounce_type,
        status,
        reason,
        ..
    } = &d.event
    else {
        panic!("not a bounce: {:?}", d.event)
    };
    assert_eq!(
        (*bounce_type, status.as_str(), reason.as_str()),
        (BounceType::Hard, "5.1.1", "user_unknown")
    );
}

#[test]
fn a_refusal_of_the_sender_is_a_block_that_suppresses_nothing() {
    let now = at("2026-01-01T00:00:00Z");
    let d = decide(
        reply(554, "5.7.1 rejected due to poor reputation"),
        fresh(),
        now,
        DAYS3,
    );
    assert_eq!(d.status, RecipientStatus::Blocked);
    assert_eq!(d.event.event_type(), EventType::Block);
    assert_eq!((d.suppress, d.soft_failure), (None, false));
}

#[test]
fn the_event_carries_the_fields_of_its_type_only() {
    let mut p = Payload::new(EventType::Deferred);
    let now = at("2026-01-01T00:00:00Z");
    decide(reply(451, "4.7.1 later"), fresh(), now, DAYS3)
        .event
        .fill(&mut p);
    let keys: Vec<&str> = p.data().keys().map(String::as_str).collect();
    for k in ["remote_mta", "smtp_response", "attempt", "next_attempt_at"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(p.event(tidings_types::AccountId::new(), now).is_ok());
}
