//! Reading the webhooks' live streams straight from the log: how far each
//! is settled, which accounts have new events, and a stream's next events
//! (with whether each is to be held).

use rusqlite::{params, Connection};
use tidings_types::WebhookId;

use super::lease::RawLeased;
use crate::model::*;
use crate::sqlite::events::unparsed_event_at;
use crate::sqlite::parse_col;
use crate::Result;

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
