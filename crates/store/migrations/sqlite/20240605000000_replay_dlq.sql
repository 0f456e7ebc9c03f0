-- Replay sessions and the dead-letter queue.

CREATE TABLE replay_sessions (
    session_id       TEXT PRIMARY KEY NOT NULL,
    replay_id        TEXT NOT NULL,
    -- the whole ReplayConfig as JSON
    config           TEXT NOT NULL,
    status           TEXT NOT NULL,
    total_events     INTEGER NOT NULL DEFAULT 0,
    replayed_events  INTEGER NOT NULL DEFAULT 0,
    failed_events    INTEGER NOT NULL DEFAULT 0,
    skipped_events   INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    last_event_at    TEXT,
    -- JSON list of ReplayError
    errors           TEXT NOT NULL DEFAULT '[]',
    created_by       TEXT,
    -- the runner's position: after (cursor_ts, cursor_seq)
    cursor_ts        TEXT,
    cursor_seq       INTEGER,
    -- a runner holds the session until then
    lease_until      TEXT
);
CREATE INDEX replay_sessions_status_created ON replay_sessions (status, created_at);
CREATE INDEX replay_sessions_created ON replay_sessions (created_at);

-- replay selects events in (timestamp, seq) order
CREATE INDEX IF NOT EXISTS events_by_timestamp_for_replay ON events (timestamp, seq);

CREATE TABLE dlq_messages (
    message_id        TEXT PRIMARY KEY NOT NULL,
    group_name        TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_seq         INTEGER NOT NULL,
    event_type        TEXT NOT NULL,
    -- the original envelope as JSON
    event_body        TEXT NOT NULL,
    original_topic    TEXT NOT NULL,
    error             TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    retry_count       INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,
    producer_id       TEXT NOT NULL,
    failed_at         TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    next_retry_at     TEXT,
    last_retried_at   TEXT,
    -- a requested redelivery: 1 until the group handled it
    redeliver         INTEGER NOT NULL DEFAULT 0,
    claimed_until     TEXT,
    redelivered_at    TEXT,
    discarded_at      TEXT,
    discard_reason    TEXT,
    UNIQUE (group_name, event_id)
);
CREATE INDEX dlq_messages_status_next ON dlq_messages (status, next_retry_at);
CREATE INDEX dlq_messages_created ON dlq_messages (created_at);
CREATE INDEX dlq_messages_group_redeliver ON dlq_messages (group_name, redeliver);
