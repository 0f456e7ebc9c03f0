-- Fair share of the execution queue: each user's last claim (a number that grows with every
-- claim, and when), so users with equal priorities take turns.
CREATE TABLE queue_turns (
    user_id        TEXT PRIMARY KEY,
    turn           INTEGER NOT NULL,
    last_claim_at  TEXT NOT NULL
);

-- Named leases of background sweeps: one holder at a time across processes.
CREATE TABLE sweep_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Retention finds old rows by time.
CREATE INDEX executions_updated ON executions (updated_at);
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX settings_audit_log_timestamp ON settings_audit_log (timestamp);
CREATE INDEX events_archive_deleted ON events_archive (deleted_at);
