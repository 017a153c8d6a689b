-- Backfills, persisted as in Airflow 3: the daemon creates (or reprocesses) one run per
-- logical date in [from_date, to_date] (both inclusive), at most max_active_runs at a time.
CREATE TABLE backfill (
	id                 INTEGER PRIMARY KEY,
	dag_id             TEXT NOT NULL,
	from_date          INTEGER NOT NULL,
	to_date            INTEGER NOT NULL,
	dag_run_conf       TEXT NOT NULL DEFAULT '{}',
	reprocess_behavior TEXT NOT NULL DEFAULT 'none'
	                   CHECK (reprocess_behavior IN ('none', 'failed', 'completed')),
	max_active_runs    INTEGER NOT NULL DEFAULT 10 CHECK (max_active_runs >= 1),
	run_backwards      INTEGER NOT NULL DEFAULT 0,
	is_paused          INTEGER NOT NULL DEFAULT 0,
	created_at         INTEGER NOT NULL,
	completed_at       INTEGER,                 -- set when done or cancelled
	updated_at         INTEGER NOT NULL
);
CREATE INDEX backfill_active ON backfill (completed_at, dag_id);

ALTER TABLE dag_run ADD COLUMN backfill_id INTEGER REFERENCES backfill (id);
CREATE INDEX dag_run_backfill ON dag_run (backfill_id, state);
