-- Who drives a run: NULL for the scheduler daemon, 'test:<pid>' for a foreground
-- `sluice dags test`. The daemon only recovers and schedules runs it owns.
ALTER TABLE dag_run ADD COLUMN owner TEXT;

-- The daemon looks for queued runs (triggered from the CLI or the API) by id.
CREATE INDEX dag_run_queued ON dag_run (state, id);
