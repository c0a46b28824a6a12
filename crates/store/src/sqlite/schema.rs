//! Schema migrations, applied in order on open; `PRAGMA user_version`
//! records how far a database has come.

pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    contact_email TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- The event log. `seq` is the polling cursor; AUTOINCREMENT so a pruned
-- seq is never handed out again.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    data TEXT NOT NULL,
    test INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_account_seq ON events(account_id, seq) WHERE test = 0;
CREATE INDEX events_account_ts ON events(account_id, ts) WHERE test = 0;

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    url TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Bumped on every change, so dispatchers can tell their copy is stale.
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX webhooks_account ON webhooks(account_id);

-- One row per (webhook, subscribed event type): the subscription used to
-- fan events out, and the failure state that pauses it.
CREATE TABLE webhook_types (
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    account_id TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT,
    paused_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER,
    PRIMARY KEY (webhook_id, event_type)
);
CREATE INDEX webhook_types_fanout ON webhook_types(account_id, event_type);

-- Delivery jobs. A leased job's due_at is its lease expiry; a held job
-- (its type is paused) is invisible to leasing until resumed.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_due ON jobs(due_at, event_seq) WHERE held = 0;
CREATE INDEX jobs_webhook ON jobs(webhook_id, event_type);
CREATE INDEX jobs_event ON jobs(event_seq);

-- The call log.
CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    at INTEGER NOT NULL,
    url TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    response TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    next_attempt_at INTEGER
) WITHOUT ROWID;
CREATE INDEX attempts_account ON attempts(account_id, id);
CREATE INDEX attempts_at ON attempts(at);
"#,
    super::messages::SCHEMA,
    super::messages::SCHEMA_DKIM,
    // A webhook's jobs by type, then in leasing order: what pausing,
    // resuming and counting a type need, and what leasing past the webhooks
    // whose lanes are full needs (`jobs::due_skipping`) to go webhook by
    // webhook instead of scanning their backlog.
    "DROP INDEX jobs_webhook;
     CREATE INDEX jobs_webhook ON jobs(webhook_id, event_type, held, due_at, event_seq);",
    super::messages::SCHEMA_ENGAGEMENT,
    // Per-account tracking settings (no row: the defaults), and what each
    // message was accepted with, so the click endpoint can re-run the very
    // rewrite the message went out with. NULL on older messages: the
    // global settings apply to them.
    r#"
CREATE TABLE account_tracking (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    opens INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    unsubscribe INTEGER,
    domain TEXT,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE messages ADD COLUMN track_unsubscribe INTEGER;
ALTER TABLE messages ADD COLUMN tracking_base TEXT;
"#,
    // Live delivery reads each webhook's events straight from the log:
    // `stream_seq` is how far it is settled, so a new event needs no job
    // row. Jobs remain for retries, held events, backfill, replay and
    // tests. Webhooks that exist already keep their live jobs and stream
    // from the end of the log. `type` joins the stream's index, so reading
    // past (and counting) events of types a webhook does not take needs
    // no table row. `events_account_ts` served no query (time ranges are
    // read in log order through `events_account_seq`, and pruning by time
    // alone cannot use it), yet every event paid for it. A type a webhook
    // starts to take is delivered from the end of the log at that moment
    // (`since_seq`), not from wherever the stream is.
    r#"
ALTER TABLE webhooks ADD COLUMN stream_seq INTEGER NOT NULL DEFAULT 0;
UPDATE webhooks SET stream_seq = (SELECT COALESCE(MAX(seq), 0) FROM events);
DROP INDEX events_account_seq;
CREATE INDEX events_account_seq ON events(account_id, seq, type) WHERE test = 0;
DROP INDEX events_account_ts;
ALTER TABLE webhook_types ADD COLUMN since_seq INTEGER NOT NULL DEFAULT 0;
UPDATE webhook_types SET since_seq = (SELECT COALESCE(MAX(seq), 0) FROM events);
"#,
    super::messages::SCHEMA_OPENS_IN_LOG,
    // A resume releases the type's held jobs in log order. An event
    // recorded before the resume but first read from the live stream
    // after it must queue behind them rather than overtake them as a live
    // send: `resumed_seq` is the log's head at the last resume.
    r#"
ALTER TABLE webhook_types ADD COLUMN resumed_seq INTEGER NOT NULL DEFAULT 0;
"#,
    // The jobs a resume releases are all due at the moment of the resume,
    // `resumed_at`; while any of them is still waiting to be leased, the
    // type's new events queue behind them as jobs due at that same moment
    // (log order decides between equals) instead of streaming live past
    // them.
    r#"
ALTER TABLE webhook_types ADD COLUMN resumed_at INTEGER;
"#,
    super::idempotency::SCHEMA,
    // When a sending domain's DKIM record, or a tracking domain's
    // verification record, was last found in DNS: NULL until then.
    r#"
ALTER TABLE domain_keys ADD COLUMN verified_at INTEGER;
ALTER TABLE account_tracking ADD COLUMN domain_verified_at INTEGER;
"#,
];
