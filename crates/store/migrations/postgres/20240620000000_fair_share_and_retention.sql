-- Fair share of the execution queue: each user's last claim (a number that grows with every
-- claim, and when), so users with equal priorities take turns.
CREATE TABLE queue_turns (
    user_id        TEXT COLLATE "C" PRIMARY KEY,
    turn           BIGINT NOT NULL,
    last_claim_at  TEXT COLLATE "C" NOT NULL
);

-- Named leases of background sweeps: one holder at a time across processes.
CREATE TABLE sweep_leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);

-- Retention finds old rows by time.
CREATE INDEX executions_updated ON executions (updated_at);
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX settings_audit_log_timestamp ON settings_audit_log (timestamp);
CREATE INDEX events_archive_deleted ON events_archive (deleted_at);
