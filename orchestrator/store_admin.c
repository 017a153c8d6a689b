/* The store's tables of variables, connections and the audit log. */
#include "orchestrator/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Variables ------------------------------------------------------------------------------------ */

void var_row_free(struct var_row *v)
{
	free(v->key);
	free(v->val);
	free(v->description);
	memset(v, 0, sizeof(*v));
}

#define VAR_COLS "key, val, description, is_encrypted, updated_at"

static void read_var(sqlite3_stmt *s, void *row)
{
	struct var_row *v = row;
	v->key = st_col_text(s, 0);
	v->val = st_col_text(s, 1);
	v->description = st_col_text(s, 2);
	v->is_encrypted = sqlite3_column_int(s, 3);
	v->updated_at = st_col_time(s, 4);
}

int store_var_get(struct store *st, const char *key, struct var_row *out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " VAR_COLS " FROM variable WHERE key = ?");
	st_bind_text(s, 1, key);
	struct var_row *rows = NULL;
	int n = store_int_collect(st, s, sizeof(*rows), read_var, (void **)&rows, "variable get");
	if (n == 1)
		*out = rows[0];
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

int store_var_list(struct store *st, struct var_row **out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " VAR_COLS " FROM variable ORDER BY key");
	return store_int_collect(st, s, sizeof(**out), read_var, (void **)out, "variable list");
}

int store_var_put(struct store *st, const struct var_row *v, bool create)
{
	sqlite3_stmt *s = store_int_prep(st, create ? "INSERT INTO variable (" VAR_COLS ") VALUES (?, ?, ?, ?, ?)"
						   : "INSERT OR REPLACE INTO variable (" VAR_COLS ") VALUES (?, ?, ?, ?, ?)");
	st_bind_text(s, 1, v->key);
	st_bind_text(s, 2, v->val);
	st_bind_text(s, 3, v->description);
	sqlite3_bind_int(s, 4, v->is_encrypted);
	st_bind_time(s, 5, now_usec());
	return store_int_run(st, s);
}

int store_var_delete(struct store *st, const char *key)
{
	sqlite3_stmt *s = store_int_prep(st, "DELETE FROM variable WHERE key = ?");
	st_bind_text(s, 1, key);
	int rc = store_int_run(st, s);
	return rc == 0 && store_int_changes(st) == 0 ? -ENOENT : rc;
}

/* Connections ---------------------------------------------------------------------------------- */

void conn_row_free(struct conn_row *c)
{
	free(c->conn_id);
	free(c->conn_type);
	free(c->description);
	free(c->host);
	free(c->schema);
	free(c->login);
	free(c->password);
	free(c->extra);
	memset(c, 0, sizeof(*c));
}

#define CONN_COLS "conn_id, conn_type, description, host, schema, login, password, port, extra, " \
		  "is_encrypted, is_extra_encrypted, updated_at"

static void read_conn(sqlite3_stmt *s, void *row)
{
	struct conn_row *c = row;
	c->conn_id = st_col_text(s, 0);
	c->conn_type = st_col_text(s, 1);
	c->description = st_col_text(s, 2);
	c->host = st_col_text(s, 3);
	c->schema = st_col_text(s, 4);
	c->login = st_col_text(s, 5);
	c->password = st_col_text(s, 6);
	c->port = sqlite3_column_int(s, 7);
	c->extra = st_col_text(s, 8);
	c->is_encrypted = sqlite3_column_int(s, 9);
	c->is_extra_encrypted = sqlite3_column_int(s, 10);
	c->updated_at = st_col_time(s, 11);
}

int store_conn_get(struct store *st, const char *conn_id, struct conn_row *out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " CONN_COLS " FROM connection WHERE conn_id = ?");
	st_bind_text(s, 1, conn_id);
	struct conn_row *rows = NULL;
	int n = store_int_collect(st, s, sizeof(*rows), read_conn, (void **)&rows, "connection get");
	if (n == 1)
		*out = rows[0];
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

int store_conn_list(struct store *st, struct conn_row **out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " CONN_COLS " FROM connection ORDER BY conn_id");
	return store_int_collect(st, s, sizeof(**out), read_conn, (void **)out, "connection list");
}

int store_conn_put(struct store *st, const struct conn_row *c, bool create)
{
	sqlite3_stmt *s = store_int_prep(st, create ? "INSERT INTO connection (" CONN_COLS ") VALUES "
							"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
						   : "INSERT OR REPLACE INTO connection (" CONN_COLS ") VALUES "
							"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	st_bind_text(s, 1, c->conn_id);
	st_bind_text(s, 2, c->conn_type);
	st_bind_text(s, 3, c->description);
	st_bind_text(s, 4, c->host);
	st_bind_text(s, 5, c->schema);
	st_bind_text(s, 6, c->login);
	st_bind_text(s, 7, c->password);
	if (c->port > 0)
		sqlite3_bind_int(s, 8, c->port);
	else
		sqlite3_bind_null(s, 8);
	st_bind_text(s, 9, c->extra);
	sqlite3_bind_int(s, 10, c->is_encrypted);
	sqlite3_bind_int(s, 11, c->is_extra_encrypted);
	st_bind_time(s, 12, now_usec());
	return store_int_run(st, s);
}

int store_conn_delete(struct store *st, const char *conn_id)
{
	sqlite3_stmt *s = store_int_prep(st, "DELETE FROM connection WHERE conn_id = ?");
	st_bind_text(s, 1, conn_id);
	int rc = store_int_run(st, s);
	return rc == 0 && store_int_changes(st) == 0 ? -ENOENT : rc;
}

/* The audit log -------------------------------------------------------------------------------- */

void log_row_free(struct log_row *l)
{
	free(l->event);
	free(l->owner);
	free(l->dag_id);
	free(l->task_id);
	free(l->run_id);
	free(l->extra);
	memset(l, 0, sizeof(*l));
}

#define LOG_COLS "id, dttm, event, owner, dag_id, task_id, run_id, map_index, try_number, execution_date, extra"

static void read_log(sqlite3_stmt *s, void *row)
{
	struct log_row *l = row;
	l->id = sqlite3_column_int64(s, 0);
	l->dttm = st_col_time(s, 1);
	l->event = st_col_text(s, 2);
	l->owner = st_col_text(s, 3);
	l->dag_id = st_col_text(s, 4);
	l->task_id = st_col_text(s, 5);
	l->run_id = st_col_text(s, 6);
	l->map_index = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 7);
	l->try_number = sqlite3_column_int(s, 8);
	l->execution_date = st_col_time(s, 9);
	l->extra = st_col_text(s, 10);
}

int store_log_add(struct store *st, struct log_row *l)
{
	sqlite3_stmt *s = store_int_prep(st, "INSERT INTO log (dttm, event, owner, dag_id, task_id, run_id, map_index, "
					     "try_number, execution_date, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (l->dttm == 0 || l->dttm == USEC_NONE)
		l->dttm = now_usec();
	st_bind_time(s, 1, l->dttm);
	st_bind_text(s, 2, l->event);
	st_bind_text(s, 3, l->owner);
	st_bind_text(s, 4, l->dag_id);
	st_bind_text(s, 5, l->task_id);
	st_bind_text(s, 6, l->run_id);
	if (l->map_index >= 0 && l->task_id)
		sqlite3_bind_int(s, 7, l->map_index);
	else
		sqlite3_bind_null(s, 7);
	if (l->try_number > 0)
		sqlite3_bind_int(s, 8, l->try_number);
	else
		sqlite3_bind_null(s, 8);
	st_bind_time(s, 9, l->execution_date == 0 ? USEC_NONE : l->execution_date);
	st_bind_text(s, 10, l->extra);
	int rc = store_int_run(st, s);
	if (rc == 0)
		l->id = store_int_last_id(st);
	return rc;
}

int store_log_list(struct store *st, struct log_row **out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " LOG_COLS " FROM log ORDER BY id");
	return store_int_collect(st, s, sizeof(**out), read_log, (void **)out, "log list");
}

int store_log_get(struct store *st, int64_t id, struct log_row *out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT " LOG_COLS " FROM log WHERE id = ?");
	sqlite3_bind_int64(s, 1, id);
	struct log_row *rows = NULL;
	int n = store_int_collect(st, s, sizeof(*rows), read_log, (void **)&rows, "log get");
	if (n == 1)
		*out = rows[0];
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

/* Users ---------------------------------------------------------------------------------------- */

void user_row_free(struct user_row *u)
{
	free(u->username);
	free(u->role);
	memset(u, 0, sizeof(*u));
}

static void read_user(sqlite3_stmt *s, void *row)
{
	struct user_row *u = row;
	u->username = st_col_text(s, 0);
	u->role = st_col_text(s, 1);
	u->created_at = st_col_time(s, 2);
	u->updated_at = st_col_time(s, 3);
}

int store_user_list(struct store *st, struct user_row **out)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT username, role, created_at, updated_at FROM user ORDER BY username");
	return store_int_collect(st, s, sizeof(**out), read_user, (void **)out, "user list");
}

static void read_name(sqlite3_stmt *s, void *row) { *(char **)row = st_col_text(s, 0); }

int store_token_name(struct store *st, const char *token_hash, char **name)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT name FROM api_token WHERE token_hash = ?");
	st_bind_text(s, 1, token_hash);
	char **rows = NULL;
	int n = store_int_collect(st, s, sizeof(*rows), read_name, (void **)&rows, "token name");
	*name = n == 1 ? rows[0] : NULL;
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

/* Sessions ------------------------------------------------------------------------------------- */

int store_session_put(struct store *st, const char *token_hash, const char *username, usec_t now, usec_t expires)
{
	sqlite3_stmt *s = store_int_prep(st, "DELETE FROM session WHERE expires_at <= ?");
	st_bind_time(s, 1, now);
	int rc = store_int_run(st, s);
	if (rc < 0)
		return rc;
	s = store_int_prep(st, "INSERT INTO session (token_hash, username, user_updated_at, created_at, expires_at) "
			       "SELECT ?1, username, updated_at, ?3, ?4 FROM user WHERE username = ?2");
	st_bind_text(s, 1, token_hash);
	st_bind_text(s, 2, username);
	st_bind_time(s, 3, now);
	st_bind_time(s, 4, expires);
	rc = store_int_run(st, s);
	return rc == 0 && store_int_changes(st) == 0 ? -ENOENT : rc;
}

struct session_row {
	char *username, *role;
	usec_t expires;
};

static void read_session(sqlite3_stmt *s, void *row)
{
	struct session_row *r = row;
	r->username = st_col_text(s, 0);
	r->role = st_col_text(s, 1);
	r->expires = st_col_time(s, 2);
}

int store_session_get(struct store *st, const char *token_hash, usec_t now, char **username, char **role,
		      usec_t *expires)
{
	sqlite3_stmt *s = store_int_prep(st, "SELECT s.username, u.role, s.expires_at FROM session s JOIN user u "
					     "ON u.username = s.username AND u.updated_at = s.user_updated_at "
					     "WHERE s.token_hash = ? AND s.expires_at > ?");
	st_bind_text(s, 1, token_hash);
	st_bind_time(s, 2, now);
	struct session_row *rows = NULL;
	int n = store_int_collect(st, s, sizeof(*rows), read_session, (void **)&rows, "session");
	*username = *role = NULL;
	if (n == 1) {
		*username = rows[0].username;
		*role = rows[0].role;
		*expires = rows[0].expires;
	}
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

int store_session_delete(struct store *st, const char *token_hash)
{
	sqlite3_stmt *s = store_int_prep(st, "DELETE FROM session WHERE token_hash = ?");
	st_bind_text(s, 1, token_hash);
	return store_int_run(st, s);
}

/* DAGs ----------------------------------------------------------------------------------------- */

int store_dag_delete(struct store *st, const char *dag_id)
{
	static const char *const sql[] = {
		"DELETE FROM dag_run WHERE dag_id = ?",
		"DELETE FROM backfill WHERE dag_id = ?",
		"DELETE FROM dag_version WHERE dag_id = ?",
		"DELETE FROM dag WHERE dag_id = ?",
	};
	int rc = 0, found = 0;
	for (size_t i = 0; i < sizeof(sql) / sizeof(*sql) && rc == 0; i++) {
		sqlite3_stmt *s = store_int_prep(st, sql[i]);
		st_bind_text(s, 1, dag_id);
		rc = store_int_run(st, s);
		found = store_int_changes(st);
	}
	return rc == 0 && found == 0 ? -ENOENT : rc;
}

/* Backups ------------------------------------------------------------------------------------- */

int store_backup(struct store *st, const char *dest, char **err)
{
	char *tmp = xasprintf("%s.tmp", dest);
	sqlite3 *out = NULL;
	int rc = -EIO;
	unlink(tmp);
	mode_t old = umask(077);
	int orc = sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	umask(old);
	if (orc != SQLITE_OK) {
		*err = xasprintf("cannot create %s: %s", tmp, out ? sqlite3_errmsg(out) : "out of memory");
		goto out;
	}
	sqlite3_backup *b = sqlite3_backup_init(out, "main", store_int_db(st), "main");
	if (!b) {
		*err = xasprintf("cannot start the backup: %s", sqlite3_errmsg(out));
		goto out;
	}
	/* A few pages at a time: writers go on between the steps (a step that meets their lock waits
	 * a little and tries again; a change restarts the copy, as SQLite's online backup does). */
	int s;
	for (int tries = 0; (s = sqlite3_backup_step(b, 256)) != SQLITE_DONE && tries < 100000; tries++) {
		if (s == SQLITE_BUSY || s == SQLITE_LOCKED)
			sqlite3_sleep(5);
		else if (s != SQLITE_OK)
			break;
	}
	sqlite3_backup_finish(b);
	if (s != SQLITE_DONE) {
		*err = xasprintf("the backup did not finish: %s", sqlite3_errstr(s));
		goto out;
	}
	sqlite3_stmt *chk = NULL;
	bool ok = sqlite3_prepare_v2(out, "PRAGMA integrity_check", -1, &chk, NULL) == SQLITE_OK &&
		  sqlite3_step(chk) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(chk, 0), "ok");
	sqlite3_finalize(chk);
	if (!ok) {
		*err = xstrdup("the copy fails SQLite's integrity check");
		goto out;
	}
	sqlite3_close(out);
	out = NULL;
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0 || rename(tmp, dest) < 0) {
		*err = xasprintf("cannot put the copy at %s: %s", dest, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	if (out)
		sqlite3_close(out);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int store_synchronous(struct store *st)
{
	sqlite3_stmt *s = store_int_prep(st, "PRAGMA synchronous");
	int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_reset(s);
	return v;
}
