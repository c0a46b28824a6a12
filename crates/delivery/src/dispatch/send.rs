//! One request: build the payload of the deliveries a lane hands over,
//! sign and send it, and turn the answer into one outcome per delivery for
//! the completer, counting each at its type's gate on the way.

use std::sync::Arc;
use std::time::Duration;

use tidings_core::work::{AttemptOutcome, AttemptRecord, JobKind, JobOutcome, LeasedJob, Next};
use tidings_types::{AttemptId, Webhook};
use tokio::sync::mpsc;

use super::{release_held, Done, Inner};
use crate::client::{AttemptResult, ErrorClass, OutgoingRequest};
use crate::limits::LimitPermit;
use crate::payload;
use crate::retry::{self, Verdict};
use crate::sign::SignatureHeaders;

pub(super) async fn send(
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
    // Each outcome is counted at its type's gate as it goes to the
    // completer, under one lock, so the gates count in the order the
    // store will: the failure that pauses a type closes its gate before
    // the next delivery of the type can pass it.
    let mut gates = inner.gates.lock();
    for job in jobs {
        if job.kind != JobKind::Test {
            gates.record(
                webhook.id,
                job.event.event_type,
                delivered,
                verdict == Verdict::Gone,
            );
        }
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
