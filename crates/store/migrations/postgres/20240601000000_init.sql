-- The whole schema of the PostgreSQL store: the same tables and columns as the SQLite store.
--
-- Timestamps are RFC 3339 UTC text with nanoseconds (the domain's precision), so text order is
-- time order; every text column uses the byte-wise "C" collation so ordering and comparisons do
-- not depend on the database's locale. Integers are BIGINT (the domain's i64).

CREATE TABLE users (
    user_id       TEXT COLLATE "C" PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    email         TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    is_superuser  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL,
    -- insertion order, the tie-break of listings by creation time
    row_seq       BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX users_created ON users (created_at, row_seq);

CREATE TABLE executions (
    execution_id       TEXT COLLATE "C" PRIMARY KEY,
    user_id            TEXT COLLATE "C" NOT NULL,
    script             TEXT NOT NULL,
    lang               TEXT COLLATE "C" NOT NULL,
    lang_version       TEXT COLLATE "C" NOT NULL,
    status             TEXT COLLATE "C" NOT NULL,
    priority           TEXT COLLATE "C" NOT NULL,
    timeout_seconds    BIGINT NOT NULL,
    memory_bytes       BIGINT NOT NULL,
    max_processes      BIGINT NOT NULL,
    max_output_bytes   BIGINT NOT NULL,
    cpu_time_ms        BIGINT,
    stdin              TEXT,
    stdout             TEXT,
    stderr             TEXT,
    exit_code          BIGINT,
    error_type         TEXT COLLATE "C",
    error_message      TEXT,
    -- resource usage: all four set or all NULL
    wall_seconds       DOUBLE PRECISION,
    cpu_time_jiffies   BIGINT,
    clk_tck_hertz      BIGINT,
    peak_memory_kb     BIGINT,
    idempotency_key    TEXT COLLATE "C",
    created_at         TEXT COLLATE "C" NOT NULL,
    updated_at         TEXT COLLATE "C" NOT NULL,
    row_seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX executions_created ON executions (created_at, row_seq);
CREATE INDEX executions_user_created ON executions (user_id, created_at);
CREATE INDEX executions_status ON executions (status);

-- The event log (outbox and bus log). `seq` is assigned under a transaction-scoped advisory
-- lock held until commit, so sequence order is commit order and tailing readers never skip an
-- event committed late.
CREATE TABLE events (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT COLLATE "C" NOT NULL UNIQUE,
    event_type    TEXT COLLATE "C" NOT NULL,
    aggregate_id  TEXT COLLATE "C",
    timestamp     TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C",
    -- the whole serialized envelope
    body          TEXT NOT NULL
);
CREATE INDEX events_type_seq ON events (event_type, seq);
CREATE INDEX events_aggregate_seq ON events (aggregate_id, seq);
CREATE INDEX events_timestamp_seq ON events (timestamp, seq);
CREATE INDEX events_user ON events (user_id);

CREATE TABLE consumer_offsets (
    group_name  TEXT COLLATE "C" NOT NULL,
    topic       TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (group_name, topic)
);

CREATE TABLE queue_entries (
    execution_id  TEXT COLLATE "C" PRIMARY KEY,
    user_id       TEXT COLLATE "C" NOT NULL,
    priority      TEXT COLLATE "C" NOT NULL,
    enqueued_at   TEXT COLLATE "C" NOT NULL,
    -- NULL while pending; set when the entry holds an execution slot
    active_since  TEXT COLLATE "C"
);
CREATE INDEX queue_entries_active ON queue_entries (active_since);

CREATE TABLE sagas (
    saga_id            TEXT COLLATE "C" PRIMARY KEY,
    saga_name          TEXT COLLATE "C" NOT NULL,
    execution_id       TEXT COLLATE "C" NOT NULL,
    user_id            TEXT COLLATE "C" NOT NULL,
    state              TEXT COLLATE "C" NOT NULL,
    current_step       TEXT COLLATE "C",
    completed_steps    TEXT NOT NULL,
    compensated_steps  TEXT NOT NULL,
    context            TEXT NOT NULL,
    error_message      TEXT,
    retry_count        BIGINT NOT NULL,
    created_at         TEXT COLLATE "C" NOT NULL,
    updated_at         TEXT COLLATE "C" NOT NULL,
    completed_at       TEXT COLLATE "C",
    row_seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    UNIQUE (execution_id, saga_name)
);
CREATE INDEX sagas_state_created ON sagas (state, created_at);
CREATE INDEX sagas_user_created ON sagas (user_id, created_at);

CREATE TABLE resource_allocations (
    allocation_id  TEXT COLLATE "C" PRIMARY KEY,
    execution_id   TEXT COLLATE "C" NOT NULL UNIQUE,
    lang           TEXT COLLATE "C" NOT NULL,
    -- 'active' or 'released'
    status         TEXT COLLATE "C" NOT NULL,
    allocated_at   TEXT COLLATE "C" NOT NULL,
    released_at    TEXT COLLATE "C"
);
CREATE INDEX resource_allocations_lang_status ON resource_allocations (lang, status);

-- Saved scripts, private to their owner.
CREATE TABLE saved_scripts (
    script_id     TEXT COLLATE "C" PRIMARY KEY,
    user_id       TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    script        TEXT NOT NULL,
    lang          TEXT COLLATE "C" NOT NULL,
    lang_version  TEXT COLLATE "C" NOT NULL,
    description   TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX saved_scripts_user ON saved_scripts (user_id, updated_at);

-- The latest snapshot of each user's event-sourced settings: the document after every
-- user_settings_updated event up to last_seq.
CREATE TABLE user_settings_snapshots (
    user_id     TEXT COLLATE "C" PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    settings    TEXT NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL
);

-- Notifications (the in-app inbox), per-channel subscriptions and outbound deliveries.
CREATE TABLE notifications (
    notification_id  TEXT COLLATE "C" PRIMARY KEY,
    user_id          TEXT COLLATE "C" NOT NULL,
    channel          TEXT COLLATE "C" NOT NULL,
    severity         TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    action_url       TEXT,
    -- JSON array of strings
    tags             TEXT NOT NULL,
    dedup_key        TEXT COLLATE "C",
    created_at       TEXT COLLATE "C" NOT NULL,
    read_at          TEXT COLLATE "C",
    row_seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    UNIQUE (user_id, dedup_key)
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at);
CREATE INDEX notifications_user_severity_created ON notifications (user_id, severity, created_at);

CREATE TABLE notification_subscriptions (
    user_id                 TEXT COLLATE "C" NOT NULL,
    channel                 TEXT COLLATE "C" NOT NULL,
    enabled                 BOOLEAN NOT NULL,
    -- JSON arrays of strings
    severities              TEXT NOT NULL,
    include_tags            TEXT NOT NULL,
    exclude_tags            TEXT NOT NULL,
    webhook_url             TEXT,
    slack_webhook           TEXT,
    webhook_secret          TEXT,
    quiet_hours_enabled     BOOLEAN NOT NULL,
    quiet_hours_start       TEXT,
    quiet_hours_end         TEXT,
    timezone                TEXT NOT NULL,
    batch_interval_minutes  BIGINT NOT NULL,
    created_at              TEXT COLLATE "C" NOT NULL,
    updated_at              TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, channel)
);

CREATE TABLE notification_deliveries (
    notification_id  TEXT COLLATE "C" NOT NULL
                     REFERENCES notifications (notification_id) ON DELETE CASCADE,
    channel          TEXT COLLATE "C" NOT NULL,
    user_id          TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    target_url       TEXT NOT NULL,
    secret           TEXT,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    -- pending: when the next attempt is due; sending: when the current claim expires
    next_attempt_at  TEXT COLLATE "C" NOT NULL,
    last_error       TEXT,
    delivered_at     TEXT COLLATE "C",
    updated_at       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);

-- At most one row ('global'): the whole settings document as JSON. No row = configuration defaults.
CREATE TABLE system_settings (
    settings_id  TEXT COLLATE "C" PRIMARY KEY,
    body         TEXT NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    updated_by   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE settings_audit_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_id    TEXT COLLATE "C" NOT NULL UNIQUE,
    action      TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    username    TEXT COLLATE "C" NOT NULL,
    timestamp   TEXT COLLATE "C" NOT NULL,
    old_values  TEXT NOT NULL,
    new_values  TEXT NOT NULL
);

-- Copies of events removed by an admin.
CREATE TABLE events_archive (
    event_id      TEXT COLLATE "C" PRIMARY KEY,
    event_type    TEXT COLLATE "C" NOT NULL,
    aggregate_id  TEXT COLLATE "C",
    timestamp     TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C",
    body          TEXT NOT NULL,
    deleted_at    TEXT COLLATE "C" NOT NULL,
    deleted_by    TEXT COLLATE "C" NOT NULL
);

-- Replay sessions.
CREATE TABLE replay_sessions (
    session_id       TEXT COLLATE "C" PRIMARY KEY,
    replay_id        TEXT COLLATE "C" NOT NULL,
    -- the whole ReplayConfig as JSON
    config           TEXT NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    total_events     BIGINT NOT NULL DEFAULT 0,
    replayed_events  BIGINT NOT NULL DEFAULT 0,
    failed_events    BIGINT NOT NULL DEFAULT 0,
    skipped_events   BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT COLLATE "C" NOT NULL,
    started_at       TEXT COLLATE "C",
    completed_at     TEXT COLLATE "C",
    last_event_at    TEXT COLLATE "C",
    -- JSON list of ReplayError
    errors           TEXT NOT NULL DEFAULT '[]',
    created_by       TEXT COLLATE "C",
    -- the runner's position: after (cursor_ts, cursor_seq)
    cursor_ts        TEXT COLLATE "C",
    cursor_seq       BIGINT,
    -- a runner holds the session until then
    lease_until      TEXT COLLATE "C"
);
CREATE INDEX replay_sessions_status_created ON replay_sessions (status, created_at);
CREATE INDEX replay_sessions_created ON replay_sessions (created_at);

-- The dead-letter queue.
CREATE TABLE dlq_messages (
    message_id        TEXT COLLATE "C" PRIMARY KEY,
    group_name        TEXT COLLATE "C" NOT NULL,
    event_id          TEXT COLLATE "C" NOT NULL,
    event_seq         BIGINT NOT NULL,
    event_type        TEXT COLLATE "C" NOT NULL,
    -- the original envelope as JSON
    event_body        TEXT NOT NULL,
    original_topic    TEXT COLLATE "C" NOT NULL,
    error             TEXT NOT NULL,
    attempts          BIGINT NOT NULL,
    retry_count       BIGINT NOT NULL DEFAULT 0,
    status            TEXT COLLATE "C" NOT NULL,
    producer_id       TEXT COLLATE "C" NOT NULL,
    failed_at         TEXT COLLATE "C" NOT NULL,
    created_at        TEXT COLLATE "C" NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL,
    next_retry_at     TEXT COLLATE "C",
    last_retried_at   TEXT COLLATE "C",
    -- a requested redelivery: true until the group handled it
    redeliver         BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_until     TEXT COLLATE "C",
    redelivered_at    TEXT COLLATE "C",
    discarded_at      TEXT COLLATE "C",
    discard_reason    TEXT,
    UNIQUE (group_name, event_id)
);
CREATE INDEX dlq_messages_status_next ON dlq_messages (status, next_retry_at);
CREATE INDEX dlq_messages_created ON dlq_messages (created_at);
CREATE INDEX dlq_messages_group_redeliver ON dlq_messages (group_name, redeliver);

-- Per-user rate-limit overrides, kept until changed (no expiry). `rules` is a JSON array.
CREATE TABLE user_rate_limits (
    user_id           TEXT COLLATE "C" PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    bypass_rate_limit BOOLEAN NOT NULL DEFAULT FALSE,
    global_multiplier DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    rules             TEXT NOT NULL DEFAULT '[]',
    notes             TEXT,
    created_at        TEXT COLLATE "C" NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL
);
