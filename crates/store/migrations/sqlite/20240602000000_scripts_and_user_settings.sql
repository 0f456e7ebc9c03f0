-- Saved scripts, private to their owner.
CREATE TABLE saved_scripts (
    script_id     TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    script        TEXT NOT NULL,
    lang          TEXT NOT NULL,
    lang_version  TEXT NOT NULL,
    description   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX saved_scripts_user ON saved_scripts (user_id, updated_at);

-- The latest snapshot of each user's event-sourced settings: the document after every
-- user_settings_updated event up to last_seq.
CREATE TABLE user_settings_snapshots (
    user_id     TEXT PRIMARY KEY NOT NULL,
    last_seq    INTEGER NOT NULL,
    settings    TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
