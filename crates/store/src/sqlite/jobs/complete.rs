//! Completing a batch of delivery outcomes in one transaction: the
//! attempts recorded, each job moved on (done, retry, held or dead),
//! failures counted per (webhook, type) and the pause rule applied to the
//! count, held and unsent events made jobs, and live streams settled.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use tidings_types::{EventType, Timestamp, WebhookId};

use crate::model::*;
use crate::sqlite::ms;
use crate::{FailureFacts, PauseRule, Result};

/// Make a live event a job: to retry it (`attempts` made), or to hold it
/// while its type is paused. Held if its type is paused now; nothing if
/// the webhook no longer takes the type, or no longer exists.
pub(super) fn insert_live_job(
    c: &Connection,
    webhook: &str,
    event_seq: i64,
    event_type: &str,
    due_at: Timestamp,
    attempts: u32,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO jobs (webhook_id, event_seq, event_type, kind, due_at, attempts, held)
         SELECT ?1, ?2, ?3, 'live', ?4, ?5, t.paused FROM webhook_types t
         WHERE t.webhook_id = ?1 AND t.event_type = ?3",
    )?
    .execute(params![
        webhook,
        event_seq,
        event_type,
        ms(due_at),
        attempts
    ])?;
    Ok(())
}

/// A held job for an event its dispatcher did not send: read while the
/// type was paused (or while the jobs of its last resume were waiting), or
/// held back because the type paused after it was read. If the type is
/// not paused (a resume committed between that read and this), the job is
/// not held, and it must not overtake the type's earlier jobs that the
/// resume made due: it is due when they are, at the resume, and log order
/// decides between equals.
pub(super) fn insert_hold(c: &Connection, h: &Hold) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO jobs (webhook_id, event_seq, event_type, kind, due_at, attempts, held)
         SELECT ?1, ?2, ?3, 'live',
                CASE WHEN t.paused THEN ?4 ELSE COALESCE(t.resumed_at, ?4) END,
                0, t.paused
         FROM webhook_types t WHERE t.webhook_id = ?1 AND t.event_type = ?3",
    )?
    .execute(params![
        h.webhook_id.to_string(),
        h.event_seq,
        h.event_type.as_str(),
        ms(h.at)
    ])?;
    Ok(())
}

/// A leased job given back unsent: held while its type is paused, and
/// otherwise due with the jobs of the type's last resume, in log order.
/// Its attempts stay as they were, since none was made.
pub(super) fn unlease(c: &Connection, u: &Unlease) -> Result<()> {
    c.prepare_cached(
        "UPDATE jobs SET leased = 0,
           held = COALESCE((SELECT t.paused FROM webhook_types t
                            WHERE t.webhook_id = jobs.webhook_id
                              AND t.event_type = jobs.event_type), 0),
           due_at = COALESCE((SELECT t.resumed_at FROM webhook_types t
                              WHERE t.webhook_id = jobs.webhook_id
                                AND t.event_type = jobs.event_type AND t.paused = 0), ?2)
         WHERE id = ?1",
    )?
    .execute(params![u.job_id, ms(u.at)])?;
    Ok(())
}

/// Of the types the batch held or gave back jobs of, those not paused now
/// that it is applied.
pub(super) fn active_types(
    c: &Connection,
    done: &Completion,
) -> Result<Vec<(WebhookId, PauseState)>> {
    let mut touched: Vec<(WebhookId, EventType)> = done
        .holds
        .iter()
        .map(|h| (h.webhook_id, h.event_type))
        .chain(done.unleases.iter().map(|u| (u.webhook_id, u.event_type)))
        .collect();
    touched.sort_unstable_by_key(|(w, t)| (w.to_string(), t.as_str()));
    touched.dedup();
    let mut st = c.prepare_cached(
        "SELECT consecutive_failures FROM webhook_types
         WHERE webhook_id = ?1 AND event_type = ?2 AND paused = 0",
    )?;
    let mut active = Vec::new();
    for (w, t) in touched {
        let failures: Option<u32> = st
            .query_row(params![w.to_string(), t.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(consecutive_failures) = failures {
            active.push((
                w,
                PauseState {
                    event_type: t,
                    paused: false,
                    consecutive_failures,
                },
            ));
        }
    }
    Ok(active)
}

pub(super) fn pause(
    c: &Connection,
    webhook: &str,
    event_type: &str,
    reason: PauseReason,
    at: Timestamp,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE webhook_types SET paused = 1, pause_reason = ?3, paused_at = ?4
             WHERE webhook_id = ?1 AND event_type = ?2 AND paused = 0",
        )?
        .execute(params![webhook, event_type, reason.as_str(), ms(at)])?;
    c.prepare_cached(
        "UPDATE jobs SET held = 1 WHERE webhook_id = ?1 AND event_type = ?2 AND kind != 'test'",
    )?
    .execute(params![webhook, event_type])?;
    Ok(n > 0)
}

/// The text of `id`, formatted once for a run of equal ids (a batch is
/// mostly one webhook of one account).
pub(super) fn text_of<K: Copy + PartialEq + std::fmt::Display>(
    slot: &mut Option<(K, String)>,
    id: K,
) -> &str {
    if slot.as_ref().map(|(k, _)| *k) != Some(id) {
        *slot = Some((id, id.to_string()));
    }
    slot.as_ref().map_or("", |(_, text)| text.as_str())
}

pub(super) fn record_success(
    c: &Connection,
    webhook: &str,
    etype: &str,
    at: Timestamp,
) -> Result<()> {
    c.prepare_cached(
        "UPDATE webhook_types SET consecutive_failures = 0, last_success_at = ?3
         WHERE webhook_id = ?1 AND event_type = ?2",
    )?
    .execute(params![webhook, etype, ms(at)])?;
    Ok(())
}

pub fn complete(
    c: &Connection,
    done: &Completion,
    rule: &dyn PauseRule,
) -> Result<CompletionSummary> {
    let mut summary = CompletionSummary::default();
    for h in &done.holds {
        insert_hold(c, h)?;
    }
    for u in &done.unleases {
        unlease(c, u)?;
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO attempts (id, account_id, webhook_id, event_id, event_type, at, url,
           outcome, status_code, error, duration_ms, response, attempt, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut delete = c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
    // A success only resets its type's failure count and notes the time,
    // so of a run of successes for one (webhook, type) only the last one
    // before a failure of that type, or before the end of the batch, needs
    // writing. Failures are applied in order, as they count and pause.
    let mut succeeded: HashMap<(WebhookId, EventType), Timestamp> = HashMap::new();
    let (mut webhook_text, mut account_text) = (None, None);
    for o in &done.outcomes {
        let a = &o.attempt;
        let webhook = text_of(&mut webhook_text, a.webhook_id);
        let etype = a.event_type.as_str();
        insert.execute(params![
            a.id.to_string(),
            text_of(&mut account_text, o.account_id),
            webhook,
            a.event_id.to_string(),
            etype,
            ms(a.at),
            a.url,
            a.outcome.as_str(),
            a.status_code,
            a.error,
            a.duration_ms,
            a.response,
            a.attempt,
            a.next_attempt_at.map(ms)
        ])?;
        match (o.next, o.job_id) {
            (Next::Done | Next::Exhausted, None) => {}
            (Next::Done | Next::Exhausted, Some(id)) => {
                delete.execute([id])?;
            }
            (Next::RetryAt(t), None) => {
                insert_live_job(c, webhook, o.event_seq, etype, t, 1)?;
            }
            // Held by the pause that follows.
            (Next::Gone, None) => {
                insert_live_job(c, webhook, o.event_seq, etype, a.at, 1)?;
            }
            (Next::RetryAt(t), Some(id)) => {
                c.prepare_cached(
                    "UPDATE jobs SET due_at = ?2, attempts = attempts + 1, leased = 0,
                       held = CASE WHEN kind = 'test' THEN 0 ELSE COALESCE(
                         (SELECT paused FROM webhook_types t
                          WHERE t.webhook_id = jobs.webhook_id AND t.event_type = jobs.event_type),
                         0) END
                     WHERE id = ?1",
                )?
                .execute(params![id, ms(t)])?;
            }
            (Next::Gone, Some(id)) => {
                c.prepare_cached(
                    "UPDATE jobs SET due_at = ?2, attempts = attempts + 1, leased = 0 WHERE id = ?1",
                )?
                .execute(params![id, ms(a.at)])?;
            }
        }
        if !o.counts {
            continue;
        }
        let key = (a.webhook_id, a.event_type);
        match a.outcome {
            AttemptOutcome::Delivered => {
                succeeded.insert(key, a.at);
            }
            AttemptOutcome::Failed => {
                if let Some(at) = succeeded.remove(&key) {
                    record_success(c, webhook, etype, at)?;
                }
                let error = match (a.status_code, &a.error) {
                    (Some(code), _) => format!("http_{code}"),
                    (None, Some(e)) => e.clone(),
                    (None, None) => "unknown".to_string(),
                };
                let failures: Option<u32> = c
                    .prepare_cached(
                        "UPDATE webhook_types SET consecutive_failures = consecutive_failures + 1,
                           last_error = ?3, last_error_at = ?4
                         WHERE webhook_id = ?1 AND event_type = ?2
                         RETURNING consecutive_failures",
                    )?
                    .query_row(params![webhook, etype, error, ms(a.at)], |r| r.get(0))
                    .optional()?;
                // No row: the webhook no longer takes the type.
                let Some(consecutive_failures) = failures else {
                    continue;
                };
                let facts = FailureFacts {
                    consecutive_failures,
                    gone: o.next == Next::Gone,
                };
                if let Some(reason) = rule.pause(facts) {
                    if pause(c, webhook, etype, reason, a.at)? {
                        summary.paused.push((a.webhook_id, a.event_type, reason));
                    }
                }
            }
        }
    }
    for ((webhook, etype), at) in succeeded {
        record_success(c, &webhook.to_string(), etype.as_str(), at)?;
    }
    let mut settle =
        c.prepare_cached("UPDATE webhooks SET stream_seq = MAX(stream_seq, ?2) WHERE id = ?1")?;
    for (webhook, seq) in &done.settled {
        settle.execute(params![webhook.to_string(), seq])?;
    }
    if !done.holds.is_empty() || !done.unleases.is_empty() {
        summary.active = active_types(c, done)?;
    }
    Ok(summary)
}
