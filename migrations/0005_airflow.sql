-- Airflow parity.
-- When a run or task instance last changed (the API's updated_at filters).
ALTER TABLE dag_run ADD COLUMN updated_at INTEGER;
ALTER TABLE task_instance ADD COLUMN updated_at INTEGER;
UPDATE dag_run SET updated_at = COALESCE(end_date, start_date, queued_at);
UPDATE task_instance SET updated_at = COALESCE(end_date, start_date, queued_when);

-- Variables: settings that templates read as {{ var.value.KEY }}. A variable whose key looks
-- secret is stored encrypted (is_encrypted = 1; see orchestrator/secrets.h).
CREATE TABLE variable (
	key          TEXT PRIMARY KEY,
	val          TEXT NOT NULL,
	description  TEXT,
	is_encrypted INTEGER NOT NULL DEFAULT 0,
	updated_at   INTEGER NOT NULL
);

-- Connections: how tasks reach other systems ({{ conn.ID.host }}). The password is always
-- stored encrypted, extra (a JSON object) when it holds a secret-looking key.
CREATE TABLE connection (
	conn_id            TEXT PRIMARY KEY,
	conn_type          TEXT NOT NULL,
	description        TEXT,
	host               TEXT,
	schema             TEXT,
	login              TEXT,
	password           TEXT,
	port               INTEGER,
	extra              TEXT,
	is_encrypted       INTEGER NOT NULL DEFAULT 0,
	is_extra_encrypted INTEGER NOT NULL DEFAULT 0,
	updated_at         INTEGER NOT NULL
);

-- The audit log (Airflow's "log" table, the API's eventLogs): who changed what, when, from where.
CREATE TABLE log (
	id             INTEGER PRIMARY KEY,
	dttm           INTEGER NOT NULL,
	event          TEXT NOT NULL,
	owner          TEXT,
	dag_id         TEXT,
	task_id        TEXT,
	run_id         TEXT,
	map_index      INTEGER,
	try_number     INTEGER,
	execution_date INTEGER,
	extra          TEXT
);
CREATE INDEX log_dttm ON log (dttm);
