-- Users of the web UI and REST API, and API tokens. Passwords are yescrypt hashes (libcrypt);
-- tokens are stored as SHA-256 hashes, the token itself is shown once when created.
CREATE TABLE user (
	id            INTEGER PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'op', 'viewer')),
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE api_token (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	token_hash   TEXT NOT NULL UNIQUE,
	role         TEXT NOT NULL CHECK (role IN ('admin', 'op', 'viewer')),
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
);
