use std::cell::RefCell;

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, Event, EventId, NewEvent, WebhookId};

use super::{ms, parse_col, ts};
use crate::{AttemptRecord, CommittedEvent, Result, StoreError};

pub(super) const EVENT_COLS: &str = "e.seq, e.id, e.account_id, e.type, e.ts, e.data";

/// Read an event from columns `at..at+6` laid out as [`EVENT_COLS`].
pub(super) fn event_at(r: &Row, at: usize) -> rusqlite::Result<Event> {
    let (mut event, data) = unparsed_event_at(r, at)?;
    event.data = serde_json::from_str(&data).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at + 5, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(event)
}

/// [`event_at`] with the data left as JSON text (and the event's data
/// empty), for callers that parse it later, off the connection's thread.
pub(super) fn unparsed_event_at(r: &Row, at: usize) -> rusqlite::Result<(Event, String)> {
    let event = Event {
        seq: r.get(at)?,
        id: parse_col(r.get(at + 1)?)?,
        account_id: parse_col(r.get(at + 2)?)?,
        event_type: parse_col(r.get(at + 3)?)?,
        timestamp: ts(r.get(at + 4)?),
        data: Default::default(),
    };
    Ok((event, r.get(at + 5)?))
}

/// The log's head: the last seq handed out and still in the table, as a
/// scalar subquery for statements that start something there.
pub(super) const LOG_HEAD: &str = "(SELECT COALESCE(MAX(seq), 0) FROM events)";

/// An event to append with its data already serialised: callers serialise
/// before handing the write to the writer thread, whose time is everyone's.
pub struct Encoded {
    pub event: NewEvent,
    pub data: String,
}

impl Encoded {
    pub fn new(event: NewEvent) -> Result<Self> {
        let data =
            serde_json::to_string(&event.data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self { event, data })
    }
}

thread_local! {
    /// The log events a write appended so far, while [`noting`] runs it.
    static NOTED: RefCell<Option<Vec<CommittedEvent>>> = const { RefCell::new(None) };
}

/// Run one write (on the writer's thread) and collect the log events it
/// appended: every append goes through [`insert`], so no use case can
/// record an event its write does not report. The caller decides, from
/// the write's outcome and its commit, whether they were committed.
pub(super) fn noting<T>(write: impl FnOnce() -> T) -> (T, Vec<CommittedEvent>) {
    let outer = NOTED.with(|n| n.borrow_mut().replace(Vec::new()));
    let out = write();
    let noted = NOTED.with(|n| std::mem::replace(&mut *n.borrow_mut(), outer));
    (out, noted.unwrap_or_default())
}

fn note(e: &Event) {
    NOTED.with(|n| {
        if let Some(noted) = n.borrow_mut().as_mut() {
            noted.push(CommittedEvent::new(e.event_type, &e.data));
        }
    });
}

/// Append one event; its data moves into the returned [`Event`].
fn insert(c: &Connection, e: Encoded, account: &str, test: bool) -> Result<Event> {
    let Encoded { event: e, data } = e;
    c.prepare_cached(
        "INSERT INTO events (id, account_id, type, ts, data, test) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.id.to_string(),
        account,
        e.event_type.as_str(),
        ms(e.timestamp),
        data,
        test
    ])?;
    let ev = Event {
        seq: c.last_insert_rowid(),
        id: e.id,
        account_id: e.account_id,
        event_type: e.event_type,
        timestamp: e.timestamp,
        data: e.data,
    };
    if !test {
        note(&ev);
    }
    Ok(ev)
}

/// Append events inside a caller's write. Their live deliveries need
/// nothing more: every webhook reads its account's events from the log
/// (see [`super::jobs::stream`]).
pub fn record(c: &Connection, events: Vec<NewEvent>) -> Result<Vec<Event>> {
    let events = events
        .into_iter()
        .map(Encoded::new)
        .collect::<Result<Vec<_>>>()?;
    record_encoded(c, events)
}

/// [`record`] of events serialised beforehand.
pub fn record_encoded(c: &Connection, events: Vec<Encoded>) -> Result<Vec<Event>> {
    let mut out = Vec::with_capacity(events.len());
    // Producers record events of one account at a time: format its id once.
    let mut account: Option<(AccountId, String)> = None;
    for e in events {
        let id = e.event.account_id;
        if account.as_ref().map(|(a, _)| *a) != Some(id) {
            account = Some((id, id.to_string()));
        }
        let acc = account.as_ref().map_or("", |(_, text)| text.as_str());
        out.push(insert(c, e, acc, false)?);
    }
    Ok(out)
}

pub fn record_test(c: &Connection, webhook: WebhookId, e: Encoded) -> Result<Event> {
    let account = e.event.account_id.to_string();
    let ev = insert(c, e, &account, true)?;
    c.prepare_cached(
        "INSERT INTO jobs (webhook_id, event_seq, event_type, kind, due_at, held)
         VALUES (?1, ?2, ?3, 'test', ?4, 0)",
    )?
    .execute(params![
        webhook.to_string(),
        ev.seq,
        ev.event_type.as_str(),
        ms(ev.timestamp)
    ])?;
    Ok(ev)
}

/// [`crate::Store::record_test_attempt`]: the example event (`test = 1`,
/// so no stream or poll reads it) and its call-log row.
pub fn record_test_attempt(c: &Connection, e: Encoded, a: &AttemptRecord) -> Result<()> {
    let account = e.event.account_id.to_string();
    insert(c, e, &account, true)?;
    c.prepare_cached(
        "INSERT INTO attempts (id, account_id, webhook_id, event_id, event_type, at, url,
           outcome, status_code, error, duration_ms, response, attempt, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        a.id.to_string(),
        account,
        a.webhook_id.to_string(),
        a.event_id.to_string(),
        a.event_type.as_str(),
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
    Ok(())
}

/// The account's events after `after` up to `head` (the log's durable
/// head), in log order.
pub fn after(
    c: &Connection,
    account: AccountId,
    after: i64,
    head: i64,
    limit: u32,
) -> Result<Vec<Event>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {EVENT_COLS} FROM events e
         WHERE e.account_id = ?1 AND e.seq > ?2 AND e.seq <= ?4 AND e.test = 0
         ORDER BY e.seq LIMIT ?3"
    ))?;
    let rows = st.query_map(params![account.to_string(), after, limit, head], |r| {
        event_at(r, 0)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The event `id` of `account`, if it is at or before `head` (the log's
/// durable head): like the polling API, a read by id never shows an event
/// that a power cut could still take back.
pub fn get(c: &Connection, account: AccountId, id: EventId, head: i64) -> Result<Event> {
    c.prepare_cached(&format!(
        "SELECT {EVENT_COLS} FROM events e WHERE e.id = ?1 AND e.account_id = ?2 AND e.seq <= ?3"
    ))?
    .query_row(params![id.to_string(), account.to_string(), head], |r| {
        event_at(r, 0)
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}
