-- Admin features: the system settings document with its audit log, and the archive of deleted
-- events.

-- At most one row ('global'): the whole settings document as JSON. No row = configuration defaults.
CREATE TABLE system_settings (
    settings_id  TEXT PRIMARY KEY NOT NULL,
    body         TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);

CREATE TABLE settings_audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_id    TEXT NOT NULL UNIQUE,
    action      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    timestamp   TEXT NOT NULL,
    old_values  TEXT NOT NULL,
    new_values  TEXT NOT NULL
);

-- Copies of events removed by an admin.
CREATE TABLE events_archive (
    event_id      TEXT PRIMARY KEY NOT NULL,
    event_type    TEXT NOT NULL,
    aggregate_id  TEXT,
    timestamp     TEXT NOT NULL,
    user_id       TEXT,
    body          TEXT NOT NULL,
    deleted_at    TEXT NOT NULL,
    deleted_by    TEXT NOT NULL
);

CREATE INDEX events_timestamp ON events (timestamp);
CREATE INDEX events_user ON events (user_id);
