//! What one SMTP reply means for one recipient of an outbound delivery:
//! its event, its new state, whether its address is suppressed, whether
//! the failure counts toward suppression, and when it is tried again.
//!
//! [`decide`] is a pure function from typed facts (the reply, who gave
//! it, how long the recipient has been tried) to a typed [`Decision`]; the
//! outbound worker reports each reply and commits what
//! [`outbound_result`] makes of it. Deferred recipients are retried with
//! backoff until `max_age`, then bounce softly with reason `expired`.

use std::time::Duration;

use tidings_mail::reply::{classify, Kind};
use tidings_store::{OutboundJob, OutboundResult, RecipientStatus};

use crate::payloads::recipient_payload;
use tidings_types::payload::{BounceSource, BounceType, SuppressionReason};
use tidings_types::{EventType, Field, Payload, Timestamp};

/// Delays before retrying a deferred recipient, by attempts made; the last
/// repeats until `max_age`.
pub const BACKOFF: [u64; 7] = [60, 300, 900, 1800, 3600, 7200, 14_400];

/// What came back for one recipient.
#[derive(Debug, Clone, Copy)]
pub struct ReplyFacts<'a> {
    pub code: u16,
    pub text: &'a str,
    /// The host that answered; `None` when none did (no route, no answer).
    pub remote: Option<&'a str>,
    /// The session was encrypted.
    pub tls: bool,
}

/// How long the recipient has been tried.
#[derive(Debug, Clone, Copy)]
pub struct History {
    /// Attempts made before this one.
    pub attempts: u32,
    pub first_attempt_at: Option<Timestamp>,
}

/// The event a reply makes, with its fields beyond the message's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeEvent {
    Sent {
        remote_mta: Option<String>,
        smtp_response: String,
        tls: bool,
        attempt: u32,
    },
    Deferred {
        remote_mta: Option<String>,
        smtp_response: String,
        attempt: u32,
        next_attempt_at: Timestamp,
    },
    Bounce {
        bounce_type: BounceType,
        status: String,
        reason: String,
        diagnostic: String,
        remote_mta: Option<String>,
        source: BounceSource,
    },
    Block {
        status: String,
        reason: String,
        diagnostic: String,
        remote_mta: Option<String>,
    },
}

impl OutcomeEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            OutcomeEvent::Sent { .. } => EventType::Sent,
            OutcomeEvent::Deferred { .. } => EventType::Deferred,
            OutcomeEvent::Bounce { .. } => EventType::Bounce,
            OutcomeEvent::Block { .. } => EventType::Block,
        }
    }

    /// Add this outcome's fields to `p` (made for [`Self::event_type`]).
    pub fn fill(self, p: &mut Payload) {
        match self {
            OutcomeEvent::Sent {
                remote_mta,
                smtp_response,
                tls,
                attempt,
            } => {
                p.set(Field::RemoteMta, remote_mta)
                    .set(Field::SmtpResponse, smtp_response)
                    .set(Field::Tls, tls)
                    .set(Field::Attempt, attempt);
            }
            OutcomeEvent::Deferred {
                remote_mta,
                smtp_response,
                attempt,
                next_attempt_at,
            } => {
                p.set(Field::RemoteMta, remote_mta)
                    .set(Field::SmtpResponse, smtp_response)
                    .set(Field::Attempt, attempt)
                    .set(
                        Field::NextAttemptAt,
                        tidings_types::time::rfc3339(next_attempt_at),
                    );
            }
            OutcomeEvent::Bounce {
                bounce_type,
                status,
                reason,
                diagnostic,
                remote_mta,
                source,
            } => {
                p.set(Field::BounceType, bounce_type)
                    .set(Field::Status, status)
                    .set(Field::Reason, reason)
                    .set(Field::Diagnostic, diagnostic)
                    .set(Field::RemoteMta, remote_mta)
                    .set(Field::Source, source);
            }
            OutcomeEvent::Block {
                status,
                reason,
                diagnostic,
                remote_mta,
            } => {
                p.set(Field::Status, status)
                    .set(Field::Reason, reason)
                    .set(Field::Diagnostic, diagnostic)
                    .set(Field::RemoteMta, remote_mta);
            }
        }
    }
}

/// What follows from one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: RecipientStatus,
    /// The reply as the recipient's state keeps it (`code text`).
    pub response: String,
    pub event: OutcomeEvent,
    /// When to try again (for a deferral).
    pub retry_at: Option<Timestamp>,
    /// Put the address on the suppression list, for this reason.
    pub suppress: Option<SuppressionReason>,
    /// A soft failure, which counts toward suppression after several in a
    /// row.
    pub soft_failure: bool,
}

/// What `reply` means for a recipient with `history`, at `now`, when
/// temporary failures are retried for `max_age`.
pub fn decide(
    reply: ReplyFacts<'_>,
    history: History,
    now: Timestamp,
    max_age: Duration,
) -> Decision {
    let c = classify(reply.code, reply.text);
    let attempt = history.attempts + 1;
    let first = history.first_attempt_at.unwrap_or(now);
    let remote_mta = reply.remote.map(str::to_string);
    let line = format!("{} {}", reply.code, reply.text);
    let response = line.clone();
    let decision = |status, event| Decision {
        status,
        response,
        event,
        retry_at: None,
        suppress: None,
        soft_failure: false,
    };
    match c.kind {
        Kind::Sent => decision(
            RecipientStatus::Sent,
            OutcomeEvent::Sent {
                remote_mta,
                smtp_response: line,
                tls: reply.tls,
                attempt,
            },
        ),
        Kind::Deferred => {
            let delay = BACKOFF[(history.attempts as usize).min(BACKOFF.len() - 1)];
            let next = now + chrono::Duration::seconds(delay as i64);
            let deadline = first + chrono::Duration::from_std(max_age).unwrap_or_default();
            if next > deadline {
                let status = if c.status.starts_with('4') {
                    "4.4.7".to_string()
                } else {
                    c.status
                };
                Decision {
                    soft_failure: true,
                    ..decision(
                        RecipientStatus::Bounced,
                        OutcomeEvent::Bounce {
                            bounce_type: BounceType::Soft,
                            status,
                            reason: "expired".into(),
                            diagnostic: line,
                            remote_mta,
                            source: BounceSource::Smtp,
                        },
                    )
                }
            } else {
                Decision {
                    retry_at: Some(next),
                    ..decision(
                        RecipientStatus::Deferred,
                        OutcomeEvent::Deferred {
                            remote_mta,
                            smtp_response: line,
                            attempt,
                            next_attempt_at: next,
                        },
                    )
                }
            }
        }
        Kind::Bounce => Decision {
            suppress: Some(SuppressionReason::HardBounce),
            ..decision(
                RecipientStatus::Bounced,
                OutcomeEvent::Bounce {
                    bounce_type: BounceType::Hard,
                    status: c.status,
                    reason: c.reason.into(),
                    diagnostic: line,
                    remote_mta,
                    source: BounceSource::Smtp,
                },
            )
        },
        Kind::Block => decision(
            RecipientStatus::Blocked,
            OutcomeEvent::Block {
                status: c.status,
                reason: c.reason.into(),
                diagnostic: line,
                remote_mta,
            },
        ),
    }
}

/// The outcome of `job`, as the store commits it: [`decide`], then the
/// event with the message's fields and the outcome's.
pub fn outbound_result(
    job: OutboundJob,
    reply: ReplyFacts<'_>,
    now: Timestamp,
    max_age: Duration,
) -> OutboundResult {
    let history = History {
        attempts: job.attempts,
        first_attempt_at: job.first_attempt_at,
    };
    let d = decide(reply, history, now, max_age);
    let mut payload = recipient_payload(&job.message, &job.email, d.event.event_type());
    d.event.fill(&mut payload);
    let event = payload
        .event(job.message.account_id, now)
        .expect("outcome events carry their types' fields only");
    OutboundResult {
        recipient_id: job.recipient_id,
        account_id: job.message.account_id,
        email: job.email,
        status: d.status,
        retry_at: d.retry_at,
        response: d.response,
        event,
        suppress: d.suppress.map(|r| r.as_str().to_string()),
        soft_failure: d.soft_failure,
    }
}

#[cfg(test)]
#[path = "outcomes_tests.rs"]
mod tests;
