-- Per-request limits and standard input of an execution.
ALTER TABLE executions ADD COLUMN cpu_time_ms INTEGER;
ALTER TABLE executions ADD COLUMN stdin TEXT;
