-- Sessions of the web UI: a login gives the browser a random token in an HttpOnly cookie; only
-- its SHA-256 is kept. A session lasts until it expires, its user logs out, or the user changes
-- (deleted, new password, new role: user.updated_at moves on and the session no longer matches).
CREATE TABLE session (
	token_hash      TEXT PRIMARY KEY,
	username        TEXT NOT NULL,
	user_updated_at INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL
);
CREATE INDEX session_expires ON session (expires_at);
