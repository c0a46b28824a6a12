use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, EventType, Timestamp, Webhook, WebhookId, WebhookSecret};

use super::events::LOG_HEAD;
use super::{ms, opt_ts, parse_col, ts};
use crate::model::{PauseReason, PauseState, TypeState};
use crate::{Result, StoreError};

const COLS: &str =
    "id, account_id, settings, secret, previous_secret, previous_until, created_at, updated_at";

fn corrupt<E: std::error::Error + Send + Sync + 'static>(
    i: usize,
) -> impl Fn(E) -> rusqlite::Error {
    move |e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn row(r: &Row) -> rusqlite::Result<Webhook> {
    let settings: String = r.get(2)?;
    let secret: String = r.get(3)?;
    let prev: Option<String> = r.get(4)?;
    let prev_until: Option<i64> = r.get(5)?;
    let previous_secret = match (prev, prev_until) {
        (Some(s), Some(u)) => Some((WebhookSecret::parse(&s).map_err(corrupt(4))?, ts(u))),
        _ => None,
    };
    Ok(Webhook {
        id: parse_col(r.get(0)?)?,
        account_id: parse_col(r.get(1)?)?,
        settings: serde_json::from_str(&settings).map_err(corrupt(2))?,
        secret: WebhookSecret::parse(&secret).map_err(corrupt(3))?,
        previous_secret,
        created_at: ts(r.get(6)?),
        updated_at: ts(r.get(7)?),
    })
}

fn settings_json(w: &Webhook) -> Result<String> {
    serde_json::to_string(&w.settings).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn type_list(types: &[EventType]) -> String {
    serde_json::to_string(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
        .expect("strings serialise")
}

/// Insert a webhook; its live stream starts at the end of the log, and
/// what came before it is backfilled as jobs.
pub fn create(c: &Connection, w: &Webhook, since: Option<Timestamp>) -> Result<u64> {
    c.prepare_cached(&format!(
        "INSERT INTO webhooks ({COLS}, url, stream_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {LOG_HEAD})"
    ))?
    .execute(params![
        w.id.to_string(),
        w.account_id.to_string(),
        settings_json(w)?,
        w.secret.expose(),
        w.previous_secret.as_ref().map(|p| p.0.expose()),
        w.previous_secret.as_ref().map(|p| ms(p.1)),
        ms(w.created_at),
        ms(w.updated_at),
        w.settings.url.as_str()
    ])?;
    for t in &w.settings.event_types {
        insert_type(c, w, *t)?;
    }
    let Some(since) = since else { return Ok(0) };
    let n = c
        .prepare_cached(
            "INSERT INTO jobs (webhook_id, event_seq, event_type, kind, due_at, held)
             SELECT ?1, seq, type, 'backfill', ?2, 0 FROM events
             -- In log order straight from the index: picking the rows by
             -- time would need them sorted by seq, and a sort of a million
             -- rows is held in memory (temp_store = MEMORY).
             INDEXED BY events_account_seq
             WHERE account_id = ?3 AND test = 0 AND ts >= ?4
               AND type IN (SELECT value FROM json_each(?5))
             ORDER BY seq",
        )?
        .execute(params![
            w.id.to_string(),
            ms(w.created_at),
            w.account_id.to_string(),
            ms(since),
            type_list(&w.settings.event_types)
        ])?;
    Ok(n as u64)
}

fn insert_type(c: &Connection, w: &Webhook, t: EventType) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT OR IGNORE INTO webhook_types (webhook_id, event_type, account_id, since_seq)
         VALUES (?1, ?2, ?3, {LOG_HEAD})"
    ))?
    .execute(params![
        w.id.to_string(),
        t.as_str(),
        w.account_id.to_string()
    ])?;
    Ok(())
}

pub fn update(c: &Connection, w: &Webhook, resume: bool, now: Timestamp) -> Result<()> {
    let n = c
        .prepare_cached(
            "UPDATE webhooks SET settings = ?3, secret = ?4, previous_secret = ?5,
             previous_until = ?6, updated_at = ?7, url = ?8, version = version + 1 WHERE id = ?1 AND account_id = ?2",
        )?
        .execute(params![
            w.id.to_string(),
            w.account_id.to_string(),
            settings_json(w)?,
            w.secret.expose(),
            w.previous_secret.as_ref().map(|p| p.0.expose()),
            w.previous_secret.as_ref().map(|p| ms(p.1)),
            ms(w.updated_at),
            w.settings.url.as_str()
        ])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    // Types no longer wanted lose their state and their waiting jobs.
    let wanted = type_list(&w.settings.event_types);
    c.prepare_cached(
        "DELETE FROM jobs WHERE webhook_id = ?1 AND kind != 'test'
         AND event_type NOT IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![w.id.to_string(), wanted])?;
    c.prepare_cached(
        "DELETE FROM webhook_types WHERE webhook_id = ?1
         AND event_type NOT IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![w.id.to_string(), wanted])?;
    for t in &w.settings.event_types {
        insert_type(c, w, *t)?;
    }
    if resume {
        resume_types(c, w.id, &[], now)?;
    }
    Ok(())
}

pub fn delete(c: &Connection, account: AccountId, id: WebhookId) -> Result<()> {
    let n = c
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2")?
        .execute(params![id.to_string(), account.to_string()])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    c.prepare_cached("DELETE FROM webhook_types WHERE webhook_id = ?1")?
        .execute([id.to_string()])?;
    c.prepare_cached("DELETE FROM jobs WHERE webhook_id = ?1")?
        .execute([id.to_string()])?;
    Ok(())
}

pub fn get(c: &Connection, account: Option<AccountId>, id: WebhookId) -> Result<Webhook> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM webhooks WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"
    ))?
    .query_row(params![id.to_string(), account.map(|a| a.to_string())], row)
    .optional()?
    .ok_or(StoreError::NotFound)
}

pub fn list(c: &Connection, account: AccountId) -> Result<Vec<Webhook>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLS} FROM webhooks WHERE account_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([account.to_string()], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn status(c: &Connection, account: AccountId, id: WebhookId) -> Result<Vec<TypeState>> {
    get(c, Some(account), id)?;
    let mut st = c.prepare_cached(
        "SELECT t.event_type, t.paused, t.pause_reason, t.paused_at, t.consecutive_failures,
                t.last_success_at, t.last_error, t.last_error_at,
                (SELECT COUNT(*) FROM jobs j WHERE j.webhook_id = t.webhook_id
                   AND j.event_type = t.event_type)
                + (SELECT COUNT(*) FROM webhooks w
                   JOIN events e INDEXED BY events_account_seq
                     ON e.account_id = w.account_id AND e.seq > w.stream_seq AND e.test = 0
                   WHERE w.id = t.webhook_id AND e.type = t.event_type AND e.seq > t.since_seq)
         FROM webhook_types t WHERE t.webhook_id = ?1 ORDER BY t.event_type",
    )?;
    let rows = st.query_map([id.to_string()], |r| {
        let reason: Option<String> = r.get(2)?;
        Ok(TypeState {
            event_type: parse_col(r.get(0)?)?,
            paused: r.get(1)?,
            pause_reason: reason.as_deref().and_then(PauseReason::parse),
            paused_at: opt_ts(r.get(3)?),
            consecutive_failures: r.get(4)?,
            last_success_at: opt_ts(r.get(5)?),
            last_error: r.get(6)?,
            last_error_at: opt_ts(r.get(7)?),
            pending: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether each of the webhook's types is paused, and its consecutive
/// failures: what a dispatcher starts counting from.
pub fn pause_states(c: &Connection, id: WebhookId) -> Result<Vec<PauseState>> {
    let mut st = c.prepare_cached(
        "SELECT event_type, paused, consecutive_failures FROM webhook_types
         WHERE webhook_id = ?1",
    )?;
    let rows = st.query_map([id.to_string()], |r| {
        Ok(PauseState {
            event_type: parse_col(r.get(0)?)?,
            paused: r.get(1)?,
            consecutive_failures: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Resume `types` (all paused ones when empty); held jobs become due at
/// `now`, so they go out in log order, and the type's events that come
/// after them queue behind them until they are all leased (see
/// [`super::jobs::stream`]). The webhook's version moves, so that a
/// dispatcher that stopped sending the type learns it may send again.
pub(super) fn resume_types(
    c: &Connection,
    id: WebhookId,
    types: &[EventType],
    now: Timestamp,
) -> Result<Vec<EventType>> {
    let paused: Vec<EventType> = {
        let mut st = c.prepare_cached(
            "SELECT event_type FROM webhook_types WHERE webhook_id = ?1 AND paused = 1",
        )?;
        let rows = st.query_map([id.to_string()], |r| parse_col(r.get(0)?))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let chosen: Vec<EventType> = paused
        .into_iter()
        .filter(|t| types.is_empty() || types.contains(t))
        .collect();
    for t in &chosen {
        c.prepare_cached(&format!(
            "UPDATE webhook_types SET paused = 0, pause_reason = NULL, paused_at = NULL,
             consecutive_failures = 0, resumed_seq = {LOG_HEAD}, resumed_at = ?3
             WHERE webhook_id = ?1 AND event_type = ?2"
        ))?
        .execute(params![id.to_string(), t.as_str(), ms(now)])?;
        c.prepare_cached(
            "UPDATE jobs SET held = 0, due_at = CASE WHEN leased = 1 THEN due_at ELSE ?3 END
             WHERE webhook_id = ?1 AND event_type = ?2 AND held = 1",
        )?
        .execute(params![id.to_string(), t.as_str(), ms(now)])?;
    }
    if !chosen.is_empty() {
        c.prepare_cached("UPDATE webhooks SET version = version + 1 WHERE id = ?1")?
            .execute([id.to_string()])?;
    }
    Ok(chosen)
}

pub fn resume(
    c: &Connection,
    account: AccountId,
    id: WebhookId,
    types: &[EventType],
    now: Timestamp,
) -> Result<Vec<EventType>> {
    get(c, Some(account), id)?;
    resume_types(c, id, types, now)
}

pub fn replay(
    c: &Connection,
    account: AccountId,
    id: WebhookId,
    from: Timestamp,
    to: Timestamp,
    types: &[EventType],
    now: Timestamp,
) -> Result<u64> {
    let w = get(c, Some(account), id)?;
    let types = if types.is_empty() {
        &w.settings.event_types[..]
    } else {
        types
    };
    let n = c
        .prepare_cached(
            "INSERT INTO jobs (webhook_id, event_seq, event_type, kind, due_at, held)
             SELECT ?1, e.seq, e.type, 'replay', ?2,
                    COALESCE((SELECT paused FROM webhook_types t
                              WHERE t.webhook_id = ?1 AND t.event_type = e.type), 0)
             FROM events e INDEXED BY events_account_seq
             WHERE e.account_id = ?3 AND e.test = 0 AND e.ts >= ?4 AND e.ts < ?5
               AND e.type IN (SELECT value FROM json_each(?6))
             ORDER BY e.seq",
        )?
        .execute(params![
            id.to_string(),
            ms(now),
            account.to_string(),
            ms(from),
            ms(to),
            type_list(types)
        ])?;
    Ok(n as u64)
}
