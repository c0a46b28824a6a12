//! The tables of the sending side: messages, their recipients (each one
//! an outbound delivery job), suppressions and soft-bounce counts, and
//! unmatched inbound reports: steps of the migration list (`MIGRATIONS`).

pub(in crate::sqlite) const SCHEMA: &str = r#"
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    subject TEXT,
    smtp_message_id TEXT NOT NULL,
    custom_id TEXT,
    grp TEXT,
    tags TEXT NOT NULL,
    track_opens INTEGER NOT NULL,
    track_clicks INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX messages_account ON messages(account_id, created_at);

-- One row per recipient: its state, and its outbound delivery job.
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    due_at INTEGER,
    -- Leased to a worker; due_at is then the lease's expiry.
    leased INTEGER NOT NULL DEFAULT 0,
    last_response TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX recipients_message ON recipients(message_id);
CREATE INDEX recipients_due ON recipients(due_at) WHERE due_at IS NOT NULL;

CREATE TABLE suppressions (
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, email)
) WITHOUT ROWID;

-- Consecutive soft bounces per address; reset by a delivery.
CREATE TABLE soft_bounces (
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (account_id, email)
) WITHOUT ROWID;

CREATE INDEX events_message ON events(account_id, json_extract(data, '$.message_id'));
CREATE INDEX messages_smtp_id ON messages(smtp_message_id);

-- Inbound reports that matched no message, for the operator.
CREATE TABLE inbound_unmatched (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    summary TEXT NOT NULL
);
"#;

/// Each recipient's engagement history: counts of opens and clicks, and
/// the latest clicks as JSON `[[at_ms, link_index], ...]`, oldest first.
/// (Opens are no longer counted here: see [`SCHEMA_OPENS_IN_LOG`].)
pub(in crate::sqlite) const SCHEMA_ENGAGEMENT: &str = r#"
ALTER TABLE recipients ADD COLUMN opens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN clicks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN recent_clicks TEXT;
"#;

/// Whether a recipient opened before is answered by the event log, not by
/// a count on its row: an open then writes the event alone, where the
/// count put one more page (a random one: opens come in any order) into
/// nearly every commit. `events_message` takes the recipient and the type,
/// so the question needs no table row, and lists a message's events by
/// recipient.
pub(in crate::sqlite) const SCHEMA_OPENS_IN_LOG: &str = r#"
DROP INDEX events_message;
CREATE INDEX events_message ON events(
    account_id, json_extract(data, '$.message_id'), json_extract(data, '$.email'), type);
ALTER TABLE recipients DROP COLUMN opens;
"#;
