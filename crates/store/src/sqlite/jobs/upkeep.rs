//! Reading the queue and the call log, and pruning what retention no
//! longer keeps (never an event a job or an unsettled stream still needs).

use rusqlite::{params, Connection, OptionalExtension};
use tidings_types::{AccountId, EventType, Timestamp};

use crate::model::*;
use crate::sqlite::{ms, opt_ts, parse_col, ts};
use crate::Result;

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
