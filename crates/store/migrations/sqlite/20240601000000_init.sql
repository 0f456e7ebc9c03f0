-- Initial schema. Timestamps are RFC 3339 UTC text with nanoseconds, so text order is time order.

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE executions (
    execution_id       TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL,
    script             TEXT NOT NULL,
    lang               TEXT NOT NULL,
    lang_version       TEXT NOT NULL,
    status             TEXT NOT NULL,
    priority           TEXT NOT NULL,
    timeout_seconds    INTEGER NOT NULL,
    memory_bytes       INTEGER NOT NULL,
    max_processes      INTEGER NOT NULL,
    max_output_bytes   INTEGER NOT NULL,
    stdout             TEXT,
    stderr             TEXT,
    exit_code          INTEGER,
    error_type         TEXT,
    error_message      TEXT,
    -- resource usage: all four set or all NULL
    wall_seconds       REAL,
    cpu_time_jiffies   INTEGER,
    clk_tck_hertz      INTEGER,
    peak_memory_kb     INTEGER,
    idempotency_key    TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX executions_created ON executions (created_at);
CREATE INDEX executions_user_created ON executions (user_id, created_at);
CREATE INDEX executions_status ON executions (status);

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    aggregate_id  TEXT,
    timestamp     TEXT NOT NULL,
    user_id       TEXT,
    -- the whole serialized envelope
    body          TEXT NOT NULL
);
CREATE INDEX events_type_seq ON events (event_type, seq);
CREATE INDEX events_aggregate_seq ON events (aggregate_id, seq);

CREATE TABLE consumer_offsets (
    group_name  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (group_name, topic)
);

CREATE TABLE queue_entries (
    execution_id  TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    priority      TEXT NOT NULL,
    enqueued_at   TEXT NOT NULL,
    -- NULL while pending; set when the entry holds an execution slot
    active_since  TEXT
);
CREATE INDEX queue_entries_active ON queue_entries (active_since);

CREATE TABLE sagas (
    saga_id            TEXT PRIMARY KEY NOT NULL,
    saga_name          TEXT NOT NULL,
    execution_id       TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    state              TEXT NOT NULL,
    current_step       TEXT,
    completed_steps    TEXT NOT NULL,
    compensated_steps  TEXT NOT NULL,
    context            TEXT NOT NULL,
    error_message      TEXT,
    retry_count        INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    completed_at       TEXT,
    UNIQUE (execution_id, saga_name)
);
CREATE INDEX sagas_state_created ON sagas (state, created_at);
CREATE INDEX sagas_user_created ON sagas (user_id, created_at);

CREATE TABLE resource_allocations (
    allocation_id  TEXT PRIMARY KEY NOT NULL,
    execution_id   TEXT NOT NULL UNIQUE,
    lang           TEXT NOT NULL,
    -- 'active' or 'released'
    status         TEXT NOT NULL,
    allocated_at   TEXT NOT NULL,
    released_at    TEXT
);
CREATE INDEX resource_allocations_lang_status ON resource_allocations (lang, status);
