use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, EventType, Timestamp, WebhookId};

use super::events::unparsed_event_at;
use super::{ms, opt_ts, parse_col, ts};
use crate::model::*;
use crate::{FailureFacts, PauseRule, Result, StoreError};

/// A leased job whose event data is still JSON text. Parsing it is left to
/// the caller ([`RawLeased::parse`]), off the writer thread.
pub struct RawLeased {
    job: LeasedJob,
    data: String,
}

impl RawLeased {
    /// The job, its event's data checked to be JSON and kept as text (see
    /// [`LeasedJob::stored_data`]).
    pub fn parse(self) -> Result<LeasedJob> {
        let mut job = self.job;
        job.stored_data = Some(
            serde_json::value::RawValue::from_string(self.data)
                .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", job.event.id)))?,
        );
        Ok(job)
    }
}

const LEASE_SELECT: &str = "SELECT j.id, j.webhook_id, j.attempts, j.kind, w.version,
        e.seq, e.id, e.account_id, e.type, e.ts, e.data
    FROM jobs j
    JOIN events e ON e.seq = j.event_seq
    JOIN webhooks w ON w.id = j.webhook_id";

fn raw_row(r: &Row) -> rusqlite::Result<RawLeased> {
    let kind: String = r.get(3)?;
    let (event, data) = unparsed_event_at(r, 5)?;
    Ok(RawLeased {
        job: LeasedJob {
            job_id: Some(r.get(0)?),
            webhook_id: parse_col(r.get(1)?)?,
            attempts: r.get(2)?,
            kind: JobKind::parse(&kind).unwrap_or(JobKind::Live),
            webhook_version: r.get(4)?,
            event,
            stored_data: None,
        },
        data,
    })
}

pub fn lease(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    skip: &[WebhookId],
) -> Result<Vec<RawLeased>> {
    let jobs: Vec<RawLeased> = if skip.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "{LEASE_SELECT}
             WHERE j.held = 0 AND j.due_at <= ?1
             ORDER BY j.due_at, j.event_seq
             LIMIT ?2"
        ))?;
        let rows = st.query_map(params![ms(now), limit], raw_row)?;
        rows.collect::<rusqlite::Result<_>>()?
    } else {
        let mut st = c.prepare_cached(&format!("{LEASE_SELECT} WHERE j.id = ?1"))?;
        let mut jobs = Vec::new();
        for id in due_skipping(c, now, limit, skip)? {
            if let Some(job) = st.query_row([id], raw_row).optional()? {
                jobs.push(job);
            }
        }
        jobs
    };
    let mut up = c.prepare_cached("UPDATE jobs SET due_at = ?2, leased = 1 WHERE id = ?1")?;
    for j in &jobs {
        up.execute(params![j.job.job_id, ms(lease_until)])?;
    }
    Ok(jobs)
}

/// The ids of the first `limit` due jobs, in leasing order, of every
/// webhook not in `skip`. It goes webhook by webhook and type by type
/// through `jobs_webhook`, so the cost is a few index seeks per webhook and
/// never a scan of a skipped webhook's backlog: one slow receiver with a
/// million jobs waiting does not make leasing for the others slow.
fn due_skipping(
    c: &Connection,
    now: Timestamp,
    limit: u32,
    skip: &[WebhookId],
) -> Result<Vec<i64>> {
    let skip: HashSet<String> = skip.iter().map(|w| w.to_string()).collect();
    let webhooks: Vec<String> = {
        let mut st = c.prepare_cached("SELECT id FROM webhooks")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.filter(|w| w.as_ref().map_or(true, |w| !skip.contains(w)))
            .collect::<rusqlite::Result<_>>()?
    };
    let mut st = c.prepare_cached(
        "SELECT id, due_at, event_seq FROM jobs INDEXED BY jobs_webhook
         WHERE webhook_id = ?1 AND event_type = ?2 AND held = 0 AND due_at <= ?3
         ORDER BY due_at, event_seq LIMIT ?4",
    )?;
    let mut due: Vec<(i64, i64, i64)> = Vec::new();
    for w in &webhooks {
        // Every type, not only the subscribed ones: test events may be of any.
        for t in EventType::ALL {
            let rows = st.query_map(params![w, t.as_str(), ms(now), limit], |r| {
                Ok((r.get(1)?, r.get(2)?, r.get(0)?))
            })?;
            for row in rows {
                due.push(row?);
            }
        }
    }
    due.sort_unstable();
    due.truncate(limit as usize);
    Ok(due.into_iter().map(|(_, _, id)| id).collect())
}

/// Every webhook's live stream, as far as it is settled.
pub fn stream_heads(c: &Connection) -> Result<Vec<StreamHead>> {
    let mut st = c.prepare_cached("SELECT id, account_id, stream_seq FROM webhooks")?;
    let rows = st.query_map([], |r| {
        Ok(StreamHead {
            webhook_id: parse_col(r.get(0)?)?,
            account_id: parse_col(r.get(1)?)?,
            settled: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The accounts with events after `after` up to `head`, the log's durable
/// head. Events commit in `seq` order (one writer), so nothing can appear
/// later at or below it.
pub fn log_activity(c: &Connection, after: i64, head: i64) -> Result<LogActivity> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT account_id FROM events NOT INDEXED
         WHERE seq > ?1 AND seq <= ?2 AND test = 0",
    )?;
    let rows = st.query_map(params![after, head], |r| parse_col(r.get(0)?))?;
    Ok(LogActivity {
        head,
        accounts: rows.collect::<rusqlite::Result<_>>()?,
    })
}

/// An event of a webhook's live stream whose data is still JSON text.
pub struct RawStreamItem {
    pub seq: i64,
    pub job: Option<RawLeased>,
    pub hold: bool,
}

impl RawStreamItem {
    pub fn parse(self) -> Result<StreamItem> {
        Ok(StreamItem {
            seq: self.seq,
            job: self.job.map(RawLeased::parse).transpose()?,
            hold: self.hold,
        })
    }
}

/// The next `limit` events of the webhook's account after `after`, up to
/// `head` (the log's durable head), in log order. Those of types the
/// webhook does not take come without their event: reading them only
/// moves the stream on, and SQLite never reads their rows (the index holds
/// the type).
///
/// An event comes with `hold` (to be held, not sent) while its type is
/// paused, when it was recorded before the type's last resume, and while
/// any job that resume released (or that queued behind those) waits to be
/// leased: as a job due at the resume it queues behind them, which are
/// older, instead of overtaking them. Once they are all leased they are in
/// the dispatcher's hands, in log order, and the type streams live again.
pub fn stream(
    c: &Connection,
    webhook: WebhookId,
    after: i64,
    head: i64,
    limit: u32,
) -> Result<Vec<RawStreamItem>> {
    let mut st = c.prepare_cached(
        "SELECT CASE WHEN t.webhook_id IS NULL THEN NULL
                     WHEN t.paused OR e.seq <= t.resumed_seq THEN 1
                     WHEN t.resumed_at IS NULL THEN 0
                     ELSE EXISTS (SELECT 1 FROM jobs j INDEXED BY jobs_webhook
                                  WHERE j.webhook_id = t.webhook_id
                                    AND j.event_type = t.event_type AND j.held = 0
                                    AND j.due_at = t.resumed_at AND j.event_seq < e.seq
                                    AND j.leased = 0) END,
                w.version,
                e.seq,
                CASE WHEN t.webhook_id IS NULL THEN NULL ELSE e.id END,
                e.account_id, e.type,
                CASE WHEN t.webhook_id IS NULL THEN NULL ELSE e.ts END,
                CASE WHEN t.webhook_id IS NULL THEN NULL ELSE e.data END
         FROM webhooks w
         JOIN events e INDEXED BY events_account_seq
           ON e.account_id = w.account_id AND e.seq > ?2 AND e.seq <= ?4 AND e.test = 0
         LEFT JOIN webhook_types t
           ON t.webhook_id = w.id AND t.event_type = e.type AND e.seq > t.since_seq
         WHERE w.id = ?1
         ORDER BY e.seq LIMIT ?3",
    )?;
    let rows = st.query_map(params![webhook.to_string(), after, limit, head], |r| {
        let seq: i64 = r.get(2)?;
        let hold: Option<bool> = r.get(0)?;
        let Some(hold) = hold else {
            return Ok(RawStreamItem {
                seq,
                job: None,
                hold: false,
            });
        };
        let (event, data) = unparsed_event_at(r, 2)?;
        Ok(RawStreamItem {
            seq,
            hold,
            job: Some(RawLeased {
                job: LeasedJob {
                    job_id: None,
                    webhook_id: webhook,
                    webhook_version: r.get(1)?,
                    attempts: 0,
                    kind: JobKind::Live,
                    event,
                    stored_data: None,
                },
                data,
            }),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Make a live event a job: to retry it (`attempts` made), or to hold it
/// while its type is paused. Held if its type is paused now; nothing if
/// the webhook no longer takes the type, or no longer exists.
fn insert_live_job(
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
fn insert_hold(c: &Connection, h: &Hold) -> Result<()> {
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
fn unlease(c: &Connection, u: &Unlease) -> Result<()> {
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
fn active_types(c: &Connection, done: &Completion) -> Result<Vec<(WebhookId, PauseState)>> {
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

fn pause(
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
fn text_of<K: Copy + PartialEq + std::fmt::Display>(slot: &mut Option<(K, String)>, id: K) -> &str {
    if slot.as_ref().map(|(k, _)| *k) != Some(id) {
        *slot = Some((id, id.to_string()));
    }
    slot.as_ref().map_or("", |(_, text)| text.as_str())
}

fn record_success(c: &Connection, webhook: &str, etype: &str, at: Timestamp) -> Result<()> {
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

pub fn next_due(c: &Connection) -> Result<Option<Timestamp>> {
    let v: Option<i64> = c
        .prepare_cached("SELECT MIN(due_at) FROM jobs WHERE held = 0")?
        .query_row([], |r| r.get(0))?;
    Ok(opt_ts(v))
}

pub fn release_leases(c: &Connection, now: Timestamp) -> Result<u64> {
    let n = c
        .prepare_cached("UPDATE jobs SET leased = 0, due_at = ?1 WHERE leased = 1")?
        .execute([ms(now)])?;
    Ok(n as u64)
}

/// Jobs, and events of the live streams not yet settled (counted from the
/// index alone).
pub fn stats(c: &Connection, _now: Timestamp) -> Result<QueueStats> {
    let (jobs, jobs_held): (u64, Option<u64>) = c
        .prepare_cached("SELECT COUNT(*), SUM(held) FROM jobs")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (live, live_held, first_live): (u64, Option<u64>, Option<i64>) = c
        .prepare_cached(
            "SELECT COUNT(*), SUM(t.paused), MIN(CASE WHEN t.paused = 0 THEN e.seq END)
             FROM webhooks w
             JOIN webhook_types t ON t.webhook_id = w.id
             JOIN events e INDEXED BY events_account_seq
               ON e.account_id = w.account_id AND e.seq > w.stream_seq AND e.test = 0
                  AND e.type = t.event_type AND e.seq > t.since_seq",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let first_job: Option<i64> = c
        .prepare_cached("SELECT MIN(event_seq) FROM jobs WHERE held = 0")?
        .query_row([], |r| r.get(0))?;
    let first = first_job.into_iter().chain(first_live).min();
    let oldest: Option<i64> = match first {
        Some(seq) => c
            .prepare_cached("SELECT ts FROM events WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok(QueueStats {
        pending: jobs + live,
        held: jobs_held.unwrap_or(0) + live_held.unwrap_or(0),
        oldest_due_at: opt_ts(oldest),
    })
}

pub fn list_attempts(
    c: &Connection,
    account: AccountId,
    f: &AttemptFilter,
) -> Result<Vec<AttemptRecord>> {
    let mut st = c.prepare_cached(
        "SELECT id, webhook_id, event_id, event_type, at, url, outcome, status_code, error,
                duration_ms, response, attempt, next_attempt_at
         FROM attempts
         WHERE account_id = ?1
           AND (?2 IS NULL OR webhook_id = ?2)
           AND (?3 IS NULL OR event_type = ?3)
           AND (?4 IS NULL OR outcome = ?4)
           AND (?5 IS NULL OR at >= ?5)
           AND (?6 IS NULL OR at < ?6)
           AND (?7 IS NULL OR id < ?7)
           AND (?8 IS NULL OR event_id = ?8)
         ORDER BY id DESC LIMIT ?9",
    )?;
    let rows = st.query_map(
        params![
            account.to_string(),
            f.webhook_id.map(|w| w.to_string()),
            f.event_type.map(EventType::as_str),
            f.outcome.map(AttemptOutcome::as_str),
            f.from.map(ms),
            f.to.map(ms),
            f.before.map(|a| a.to_string()),
            f.event_id.map(|e| e.to_string()),
            f.limit.max(1)
        ],
        |r| {
            let outcome: String = r.get(6)?;
            Ok(AttemptRecord {
                id: parse_col(r.get(0)?)?,
                webhook_id: parse_col(r.get(1)?)?,
                event_id: parse_col(r.get(2)?)?,
                event_type: parse_col(r.get(3)?)?,
                at: ts(r.get(4)?),
                url: r.get(5)?,
                outcome: AttemptOutcome::parse(&outcome).unwrap_or(AttemptOutcome::Failed),
                status_code: r.get(7)?,
                error: r.get(8)?,
                duration_ms: r.get(9)?,
                response: r.get(10)?,
                attempt: r.get(11)?,
                next_attempt_at: opt_ts(r.get(12)?),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn prune(c: &Connection, before: Timestamp) -> Result<PruneSummary> {
    let events = c
        .prepare_cached(
            "DELETE FROM events WHERE ts < ?1
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_seq = events.seq)
             AND NOT EXISTS (SELECT 1 FROM webhooks w
                             WHERE w.account_id = events.account_id AND w.stream_seq < events.seq)",
        )?
        .execute([ms(before)])?;
    let attempts = c
        .prepare_cached("DELETE FROM attempts WHERE at < ?1")?
        .execute([ms(before)])?;
    Ok(PruneSummary {
        events: events as u64,
        attempts: attempts as u64,
    })
}
