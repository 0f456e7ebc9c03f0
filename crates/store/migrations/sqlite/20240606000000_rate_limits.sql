-- Per-user rate-limit overrides, kept until changed (no expiry). `rules` is a JSON array.

CREATE TABLE user_rate_limits (
    user_id           TEXT PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    bypass_rate_limit INTEGER NOT NULL DEFAULT 0,
    global_multiplier REAL NOT NULL DEFAULT 1.0,
    rules             TEXT NOT NULL DEFAULT '[]',
    notes             TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
