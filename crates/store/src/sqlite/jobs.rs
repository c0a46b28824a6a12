use rusqlite::{params, Connection, OptionalExtension};
use tidings_types::{AccountId, EventType, Timestamp, WebhookId};

use super::events::{event_at, EVENT_COLS};
use super::{ms, opt_ts, parse_col, ts};
use crate::model::*;
use crate::Result;

pub fn lease(
    c: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    skip: &[WebhookId],
) -> Result<Vec<LeasedJob>> {
    let skip = serde_json::to_string(&skip.iter().map(|w| w.to_string()).collect::<Vec<_>>())
        .expect("strings serialise");
    let mut st = c.prepare_cached(&format!(
        "SELECT j.id, j.webhook_id, j.attempts, j.kind, w.version, {EVENT_COLS}
         FROM jobs j
         JOIN events e ON e.seq = j.event_seq
         JOIN webhooks w ON w.id = j.webhook_id
         WHERE j.held = 0 AND j.due_at <= ?1
           AND j.webhook_id NOT IN (SELECT value FROM json_each(?2))
         ORDER BY j.due_at, j.event_seq
         LIMIT ?3"
    ))?;
    let rows = st.query_map(params![ms(now), skip, limit], |r| {
        let kind: String = r.get(3)?;
        Ok(LeasedJob {
            job_id: r.get(0)?,
            webhook_id: parse_col(r.get(1)?)?,
            attempts: r.get(2)?,
            kind: JobKind::parse(&kind).unwrap_or(JobKind::Live),
            webhook_version: r.get(4)?,
            event: event_at(r, 5)?,
        })
    })?;
    let jobs: Vec<LeasedJob> = rows.collect::<rusqlite::Result<_>>()?;
    let mut up = c.prepare_cached("UPDATE jobs SET due_at = ?2, leased = 1 WHERE id = ?1")?;
    for j in &jobs {
        up.execute(params![j.job_id, ms(lease_until)])?;
    }
    Ok(jobs)
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

pub fn complete(
    c: &Connection,
    outcomes: Vec<JobOutcome>,
    pause_after: u32,
) -> Result<CompletionSummary> {
    let mut summary = CompletionSummary::default();
    for o in outcomes {
        let a = &o.attempt;
        let webhook = a.webhook_id.to_string();
        let etype = a.event_type.as_str();
        c.prepare_cached(
            "INSERT INTO attempts (id, account_id, webhook_id, event_id, event_type, at, url,
               outcome, status_code, error, duration_ms, response, attempt, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            a.id.to_string(),
            o.account_id.to_string(),
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
        match o.next {
            Next::Done | Next::Exhausted => {
                c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                    .execute([o.job_id])?;
            }
            Next::RetryAt(t) => {
                c.prepare_cached(
                    "UPDATE jobs SET due_at = ?2, attempts = attempts + 1, leased = 0,
                       held = CASE WHEN kind = 'test' THEN 0 ELSE COALESCE(
                         (SELECT paused FROM webhook_types t
                          WHERE t.webhook_id = jobs.webhook_id AND t.event_type = jobs.event_type),
                         0) END
                     WHERE id = ?1",
                )?
                .execute(params![o.job_id, ms(t)])?;
            }
            Next::Gone => {
                c.prepare_cached(
                    "UPDATE jobs SET due_at = ?2, attempts = attempts + 1, leased = 0 WHERE id = ?1",
                )?
                .execute(params![o.job_id, ms(a.at)])?;
            }
        }
        if !o.counts {
            continue;
        }
        match a.outcome {
            AttemptOutcome::Delivered => {
                c.prepare_cached(
                    "UPDATE webhook_types SET consecutive_failures = 0, last_success_at = ?3
                     WHERE webhook_id = ?1 AND event_type = ?2",
                )?
                .execute(params![webhook, etype, ms(a.at)])?;
            }
            AttemptOutcome::Failed => {
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
                let reason = if o.next == Next::Gone {
                    Some(PauseReason::Gone)
                } else if failures.is_some_and(|f| f >= pause_after) {
                    Some(PauseReason::ConsecutiveFailures)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    if failures.is_some() && pause(c, &webhook, etype, reason, a.at)? {
                        summary.paused.push((a.webhook_id, a.event_type, reason));
                    }
                }
            }
        }
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

pub fn stats(c: &Connection, _now: Timestamp) -> Result<QueueStats> {
    let (pending, held): (u64, Option<u64>) = c
        .prepare_cached("SELECT COUNT(*), SUM(held) FROM jobs")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let oldest: Option<i64> = c
        .prepare_cached(
            "SELECT e.ts FROM jobs j JOIN events e ON e.seq = j.event_seq
             WHERE j.held = 0 ORDER BY j.event_seq LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(QueueStats {
        pending,
        held: held.unwrap_or(0),
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
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_seq = events.seq)",
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
