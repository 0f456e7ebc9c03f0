-- Worker instances and the runs they own: each worker holds a lease renewed by its heartbeat;
-- a running execution records its owner, and when its run was handed to the executor.
ALTER TABLE executions ADD COLUMN worker_id TEXT COLLATE "C";
ALTER TABLE executions ADD COLUMN run_started_at TEXT COLLATE "C";

-- Runs interrupted before leases existed: owned by a worker that holds none, and possibly
-- started, so they are settled as lost (never run again).
UPDATE executions SET worker_id = 'unleased', run_started_at = updated_at WHERE status = 'running';

CREATE TABLE worker_leases (
    worker_id   TEXT COLLATE "C" PRIMARY KEY,
    -- JSON: the worker's report (installed runtimes, executor health)
    report      TEXT NOT NULL,
    started_at  TEXT COLLATE "C" NOT NULL,
    renewed_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX worker_leases_expires ON worker_leases (expires_at);
