-- sluice schema, level 1. Times are INTEGER microseconds since the Unix epoch (UTC);
-- NULL means "not set". States are Airflow's state names ('none' for Airflow's null).

CREATE TABLE dag (
	dag_id            TEXT PRIMARY KEY,
	fileloc           TEXT NOT NULL,
	is_paused         INTEGER NOT NULL DEFAULT 0,
	is_active         INTEGER NOT NULL DEFAULT 1,
	version           TEXT,                  -- content hash of the latest good version
	description       TEXT,
	schedule          TEXT,
	timezone          TEXT NOT NULL DEFAULT 'UTC',
	owners            TEXT,                  -- comma-separated
	tags              TEXT,                  -- JSON array of strings
	max_active_runs   INTEGER NOT NULL DEFAULT 16,
	max_active_tasks  INTEGER NOT NULL DEFAULT 16,
	last_parsed_time  INTEGER,
	next_dagrun       INTEGER,
	next_dagrun_data_interval_start INTEGER,
	next_dagrun_data_interval_end   INTEGER
);

-- Every distinct content of a DAG file that produced this DAG. Runs point at the version
-- they started with, so a run keeps its shape when the file changes.
CREATE TABLE dag_version (
	dag_id      TEXT NOT NULL,
	version     TEXT NOT NULL,               -- SHA-256 of the file content
	fileloc     TEXT NOT NULL,
	source      TEXT NOT NULL,               -- the file content
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (dag_id, version)
);

CREATE TABLE import_error (
	id          INTEGER PRIMARY KEY,
	filename    TEXT NOT NULL UNIQUE,
	line        INTEGER,
	message     TEXT NOT NULL,               -- "file:line: message"
	timestamp   INTEGER NOT NULL
);

CREATE TABLE dag_run (
	id                  INTEGER PRIMARY KEY,
	dag_id              TEXT NOT NULL,
	run_id              TEXT NOT NULL,
	run_type            TEXT NOT NULL CHECK (run_type IN ('scheduled', 'manual', 'backfill')),
	logical_date        INTEGER NOT NULL,
	data_interval_start INTEGER,
	data_interval_end   INTEGER,
	state               TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
	conf                TEXT NOT NULL DEFAULT '{}',  -- JSON object
	queued_at           INTEGER,
	start_date          INTEGER,
	end_date            INTEGER,
	note                TEXT,
	dag_version         TEXT,
	external_trigger    INTEGER NOT NULL DEFAULT 0,
	last_scheduling_decision INTEGER,
	UNIQUE (dag_id, run_id),
	UNIQUE (dag_id, logical_date)
);
CREATE INDEX dag_run_state ON dag_run (state);

CREATE TABLE task_instance (
	id               INTEGER PRIMARY KEY,
	run_pk           INTEGER NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
	dag_id           TEXT NOT NULL,
	run_id           TEXT NOT NULL,
	task_id          TEXT NOT NULL,
	map_index        INTEGER NOT NULL DEFAULT -1,
	state            TEXT NOT NULL DEFAULT 'none',
	try_number       INTEGER NOT NULL DEFAULT 0,   -- number of the current/last try
	max_tries        INTEGER NOT NULL DEFAULT 0,   -- retries; tries allowed = max_tries + 1
	operator         TEXT,
	executor         TEXT,
	hostname         TEXT,
	pid              INTEGER,
	external_id      TEXT,                         -- backend handle of the running try
	pool             TEXT NOT NULL DEFAULT 'default_pool',
	pool_slots       INTEGER NOT NULL DEFAULT 1,
	priority_weight  INTEGER NOT NULL DEFAULT 1,
	queued_when      INTEGER,
	start_date       INTEGER,
	end_date         INTEGER,
	duration         REAL,                         -- seconds
	exit_code        INTEGER,
	next_retry_at    INTEGER,
	first_poke_at    INTEGER,                      -- sensors: start of the timeout window
	note             TEXT,
	UNIQUE (run_pk, task_id, map_index)
);
CREATE INDEX task_instance_state ON task_instance (state);
CREATE INDEX task_instance_dag ON task_instance (dag_id, run_id);

-- One row per try, kept when a task instance is cleared or retried.
CREATE TABLE task_try (
	ti_id        INTEGER NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
	try_number   INTEGER NOT NULL,
	state        TEXT NOT NULL,
	executor     TEXT,
	hostname     TEXT,
	pid          INTEGER,
	external_id  TEXT,
	queued_when  INTEGER,
	start_date   INTEGER,
	end_date     INTEGER,
	duration     REAL,
	exit_code    INTEGER,
	log_path     TEXT,
	message      TEXT,
	PRIMARY KEY (ti_id, try_number)
);

-- Outputs a task wrote to $SLUICE_OUTPUT (sluice's XCom).
CREATE TABLE task_output (
	ti_id     INTEGER NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	timestamp INTEGER NOT NULL,
	PRIMARY KEY (ti_id, key)
);

CREATE TABLE pool (
	name        TEXT PRIMARY KEY,
	slots       INTEGER NOT NULL CHECK (slots >= -1),  -- -1 = unlimited
	description TEXT,
	include_deferred INTEGER NOT NULL DEFAULT 0
);
INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');
