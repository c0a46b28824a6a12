//! Leasing due jobs: a leased job's `due_at` moves to the lease's expiry,
//! so a job whose worker died becomes due again by itself. Also when the
//! next job is due, and releasing every lease at a single process's start.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{EventType, Timestamp, WebhookId};

use crate::model::*;
use crate::sqlite::events::unparsed_event_at;
use crate::sqlite::{ms, opt_ts, parse_col};
use crate::{Result, StoreError};

/// A leased job whose event data is still JSON text. Parsing it is left to
/// the caller ([`RawLeased::parse`]), off the writer thread.
pub struct RawLeased {
    pub(super) job: LeasedJob,
    pub(super) data: String,
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

pub(super) const LEASE_SELECT: &str = "SELECT j.id, j.webhook_id, j.attempts, j.kind, w.version,
        e.seq, e.id, e.account_id, e.type, e.ts, e.data
    FROM jobs j
    JOIN events e ON e.seq = j.event_seq
    JOIN webhooks w ON w.id = j.webhook_id";

pub(super) fn raw_row(r: &Row) -> rusqlite::Result<RawLeased> {
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
pub(super) fn due_skipping(
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
