-- Notifications (the in-app inbox), per-channel subscriptions and outbound deliveries.

CREATE TABLE notifications (
    notification_id  TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    channel          TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    action_url       TEXT,
    -- JSON array of strings
    tags             TEXT NOT NULL,
    dedup_key        TEXT,
    created_at       TEXT NOT NULL,
    read_at          TEXT,
    UNIQUE (user_id, dedup_key)
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at);
CREATE INDEX notifications_user_severity_created ON notifications (user_id, severity, created_at);

CREATE TABLE notification_subscriptions (
    user_id                 TEXT NOT NULL,
    channel                 TEXT NOT NULL,
    enabled                 INTEGER NOT NULL,
    -- JSON arrays of strings
    severities              TEXT NOT NULL,
    include_tags            TEXT NOT NULL,
    exclude_tags            TEXT NOT NULL,
    webhook_url             TEXT,
    slack_webhook           TEXT,
    webhook_secret          TEXT,
    quiet_hours_enabled     INTEGER NOT NULL,
    quiet_hours_start       TEXT,
    quiet_hours_end         TEXT,
    timezone                TEXT NOT NULL,
    batch_interval_minutes  INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    PRIMARY KEY (user_id, channel)
);

CREATE TABLE notification_deliveries (
    notification_id  TEXT NOT NULL REFERENCES notifications (notification_id) ON DELETE CASCADE,
    channel          TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    status           TEXT NOT NULL,
    target_url       TEXT NOT NULL,
    secret           TEXT,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    -- pending: when the next attempt is due; sending: when the current claim expires
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    delivered_at     TEXT,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
