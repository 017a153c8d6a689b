#include "orchestrator/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "orchestrator/embedded.h"
#include "base/log.h"

#define STMT_CACHE 128
#define BUSY_TIMEOUT_MS 60000

struct store {
	sqlite3 *db;
	bool readonly;
	int txn_depth;
	usec_t last_commit;
	usec_t busy_since;         /* monotonic; 0 = not waiting for a lock */
	usec_t busy_limit;         /* how long to wait for a lock; 0 = BUSY_TIMEOUT_MS */
	bool busy_warned;
	/* Fault injection (SLUICE_STORE_FAULTS): the calls seen so far of each kind. */
	unsigned long nwrites, ncommits;
	struct {
		const char *sql; /* identity: the address of a static string */
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
};

/* Migrations are the embedded files named NNNN_*.sql, in name order. */
static int migration_count(void)
{
	int n = 0;
	for (const struct embedded_file *f = orchestrator_files; f->name; f++) {
		size_t l = strlen(f->name);
		if (l > 9 && !strcmp(f->name + l - 4, ".sql") && atoi(f->name) == n + 1)
			n++;
	}
	return n;
}

static const struct embedded_file *migration(int level)
{
	for (const struct embedded_file *f = orchestrator_files; f->name; f++) {
		size_t l = strlen(f->name);
		if (l > 9 && !strcmp(f->name + l - 4, ".sql") && atoi(f->name) == level)
			return f;
	}
	return NULL;
}

int store_schema_target(void) { return migration_count(); }

static int sql_err(struct store *st, char **err, const char *what)
{
	if (err)
		*err = xasprintf("%s: %s", what, sqlite3_errmsg(st->db));
	int code = sqlite3_errcode(st->db);
	if (code == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return -EBUSY;
	if (code == SQLITE_FULL)
		return -ENOSPC;
	if (code == SQLITE_READONLY)
		return -EROFS;
	return -EIO;
}

/* Returns a cached prepared statement for a static SQL string, reset and unbound. */
static sqlite3_stmt *prep(struct store *st, const char *sql)
{
	int i;
	for (i = 0; i < STMT_CACHE && st->cache[i].sql; i++) {
		if (st->cache[i].sql == sql) {
			sqlite3_reset(st->cache[i].stmt);
			sqlite3_clear_bindings(st->cache[i].stmt);
			return st->cache[i].stmt;
		}
	}
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
		fatalx("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(st->db));
	if (i < STMT_CACHE) {
		st->cache[i].sql = sql;
		st->cache[i].stmt = stmt;
	} else {
		fatalx("store: statement cache too small");
	}
	return stmt;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void bind_time(sqlite3_stmt *s, int i, usec_t v)
{
	if (v == USEC_NONE)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, v);
}

static char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	if (!t)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(s, i); /* after _text: the length of that text */
	char *c = xmalloc(n + 1);
	memcpy(c, t, n + 1);
	return c;
}

static usec_t col_time(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? USEC_NONE : sqlite3_column_int64(s, i);
}

/* Steps a statement that returns no rows. */
/* A writable connection waiting for the database's lock (another process holds it), since when
 * (wall clock, 0: none waits), for /health. */
static _Atomic usec_t writer_waiting_since;

usec_t store_lock_wait_since(void) { return atomic_load(&writer_waiting_since); }

void store_set_busy_limit(struct store *st, usec_t limit) { st->busy_limit = limit; }

static void done_waiting(struct store *st)
{
	if (!st->busy_since)
		return;
	if (st->busy_warned)
		log_info("store: the database's lock is free again after %.1f s", (double)(mono_usec() - st->busy_since) / 1e6);
	st->busy_since = 0;
	st->busy_warned = false;
	if (!st->readonly)
		atomic_store(&writer_waiting_since, 0);
}

/* SQLite's busy handler: waits for a lock with short sleeps for up to BUSY_TIMEOUT_MS (then the
 * statement fails with SQLITE_BUSY), noting the wait for /health and in the log after 5 s. */
static int on_busy(void *arg, int count)
{
	struct store *st = arg;
	usec_t now = mono_usec();
	if (count == 0 || !st->busy_since) {
		st->busy_since = now;
		if (!st->readonly)
			atomic_store(&writer_waiting_since, now_usec());
	}
	usec_t waited = now - st->busy_since, limit = st->busy_limit ? st->busy_limit : (usec_t)BUSY_TIMEOUT_MS * 1000;
	if (waited >= limit) {
		log_warnx("store: gave up waiting for the database's lock after %.1f s", (double)waited / 1e6);
		done_waiting(st);
		return 0;
	}
	if (!st->readonly && !st->busy_warned && waited >= 5 * USEC_PER_SEC) {
		st->busy_warned = true;
		log_warnx("store: another process has held the database's lock for 5 s (a sqlite3 shell or a backup "
			  "tool?); changes wait until it lets go");
	}
	usleep(count < 5 ? 1000u << count : 50000u);
	return 1;
}

/* The store's fault-injection hook, for tests that drive a whole run through failing writes:
 * SLUICE_STORE_FAULTS="write@N[+P],commit@M[+Q]" makes the Nth writing statement (and then every
 * Pth after it) and the Mth COMMIT (then every Qth) of each writable connection fail as an I/O error
 * would, without touching the database. Read once; unset (the normal case) costs one branch. */
struct fault_rule {
	unsigned long first, every; /* 0 = never */
};
static struct fault_rule fault_write, fault_commit;
static bool faults_on;

static void parse_fault(const char *spec, const char *kind, struct fault_rule *r)
{
	const char *p = strstr(spec, kind);
	size_t kl = strlen(kind);
	if (!p || p[kl] != '@')
		return;
	char *end;
	r->first = strtoul(p + kl + 1, &end, 10);
	r->every = *end == '+' ? strtoul(end + 1, NULL, 10) : 0;
}

static void faults_read(void)
{
	const char *spec = getenv("SLUICE_STORE_FAULTS");
	if (!spec || !*spec)
		return;
	parse_fault(spec, "write", &fault_write);
	parse_fault(spec, "commit", &fault_commit);
	faults_on = fault_write.first || fault_commit.first;
	if (faults_on)
		log_warnx("store: fault injection on (SLUICE_STORE_FAULTS=%s)", spec);
}

static void faults_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, faults_read);
}

static bool fault_hit(const struct fault_rule *r, unsigned long n)
{
	return r->first && (n == r->first || (r->every && n > r->first && (n - r->first) % r->every == 0));
}

/* Whether this step of s is to fail (counting it). */
static bool inject_fault(struct store *st, sqlite3_stmt *s)
{
	const char *sql = sqlite3_sql(s);
	if (sql && !strncmp(sql, "COMMIT", 6)) {
		if (!fault_hit(&fault_commit, ++st->ncommits))
			return false;
		log_warnx("store: injected fault: COMMIT #%lu fails", st->ncommits);
		return true;
	}
	if (sqlite3_stmt_readonly(s) || !fault_hit(&fault_write, ++st->nwrites))
		return false;
	log_warnx("store: injected fault: write #%lu fails (%.40s)", st->nwrites, sql ? sql : "?");
	return true;
}

static int run(struct store *st, sqlite3_stmt *s)
{
	if (faults_on && !st->readonly && inject_fault(st, s))
		return -EIO;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	done_waiting(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return sql_err(st, NULL, "step");
}

/* Steps s to its end, reading each row with rd into a growing array of elements of size bytes
 * (*out, malloc'd, zeroed beyond what was read). Returns the count or a negative error. */
static int collect(struct store *st, sqlite3_stmt *s, size_t size, void (*rd)(sqlite3_stmt *, void *),
		   void **out, const char *what)
{
	size_t n = 0, cap = 16;
	char *arr = xcalloc(cap, size);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			arr = xrealloc(arr, 2 * cap * size);
			memset(arr + cap * size, 0, cap * size);
			cap *= 2;
		}
		rd(s, arr + n++ * size);
	}
	sqlite3_reset(s);
	done_waiting(st);
	*out = arr;
	return rc == SQLITE_DONE ? (int)n : sql_err(st, NULL, what);
}

static int exec_sql(struct store *st, const char *sql, char **err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = sql_err(st, NULL, "exec");
		if (err)
			*err = xasprintf("%s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

int store_schema_level(struct store *st)
{
	sqlite3_stmt *s = prep(st, "PRAGMA user_version");
	int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_reset(s);
	return v;
}

int store_migrate(struct store *st, int *from, int *to, char **err)
{
	return store_migrate_upto(st, migration_count(), from, to, err);
}

int store_migrate_upto(struct store *st, int upto, int *from, int *to, char **err)
{
	int level = store_schema_level(st), target = upto < migration_count() ? upto : migration_count();
	*from = *to = level;
	if (level > target) {
		*err = xasprintf("the database is at schema level %d but this sluice only knows level %d; "
				 "use a newer sluice (refusing to touch it)", level, target);
		return -EPROTO;
	}
	while (level < target) {
		const struct embedded_file *m = migration(level + 1);
		char *e = NULL;
		char pragma[64];
		int rc = exec_sql(st, "BEGIN IMMEDIATE", err);
		if (rc < 0)
			return rc;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", level + 1);
		if ((rc = exec_sql(st, m->data, &e)) < 0 || (rc = exec_sql(st, pragma, &e)) < 0) {
			*err = xasprintf("migration %s failed: %s", m->name, e);
			free(e);
			exec_sql(st, "ROLLBACK", NULL);
			return rc;
		}
		if ((rc = exec_sql(st, "COMMIT", err)) < 0)
			return rc;
		level++;
		*to = level;
	}
	return 0;
}

int store_open(const char *path, int flags, struct store **out, char **err)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int oflags = (flags & STORE_READONLY) ? SQLITE_OPEN_READONLY
					      : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc;

	*out = NULL;
	st->readonly = flags & STORE_READONLY;
	faults_init();
	if (sqlite3_open_v2(path, &st->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*err = xasprintf("cannot open database %s: %s", path,
				 st->db ? sqlite3_errmsg(st->db) : "out of memory");
		rc = -EIO;
		goto fail;
	}
	sqlite3_busy_handler(st->db, on_busy, st);
	/* The database holds password hashes and every run's conf: the owner's alone. SQLite gives
	 * its -wal and -shm files the database file's mode. */
	if (!(flags & STORE_READONLY))
		chmod(path, 0600);
	sqlite3_extended_result_codes(st->db, 0);
	if (!st->readonly && (rc = exec_sql(st, "PRAGMA journal_mode=WAL", err)) < 0)
		goto fail;
	/* NORMAL in WAL mode: a commit survives any crash of sluice; a power cut may take the last
	 * commits back, never the database. FULL (core.db_synchronous): it survives that too. */
	if ((rc = exec_sql(st, flags & STORE_SYNC_FULL ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"
						       : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", err)) < 0)
		goto fail;
	int level = store_schema_level(st);
	if (level < 0) {
		*err = xasprintf("%s is not a sluice database: %s", path, sqlite3_errmsg(st->db));
		rc = -EIO;
		goto fail;
	}
	if (level > migration_count()) {
		*err = xasprintf("the database %s is at schema level %d, newer than this sluice (level %d); "
				 "it was written by a newer sluice: upgrade sluice instead of downgrading the database",
				 path, level, migration_count());
		rc = -EPROTO;
		goto fail;
	}
	if (!(flags & STORE_NO_MIGRATE) && !st->readonly) {
		int from, to;
		if ((rc = store_migrate(st, &from, &to, err)) < 0)
			goto fail;
	} else if (level < migration_count() && !(flags & STORE_NO_MIGRATE)) {
		*err = xasprintf("the database %s is at schema level %d, older than this sluice (level %d); "
				 "run `sluice db migrate`", path, level, migration_count());
		rc = -EPROTO;
		goto fail;
	}
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < STMT_CACHE && st->cache[i].sql; i++)
		sqlite3_finalize(st->cache[i].stmt);
	sqlite3_close(st->db);
	free(st);
}

int store_integrity(struct store *st, struct strbuf *report)
{
	int problems = 0;
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
		return sql_err(st, NULL, "integrity_check");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(s, 0);
		if (r && strcmp(r, "ok")) {
			sb_printf(report, "integrity: %s\n", r);
			problems = 1;
		}
	}
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
		return sql_err(st, NULL, "foreign_key_check");
	while (sqlite3_step(s) == SQLITE_ROW) {
		sb_printf(report, "foreign key: table %s row %lld refers to a missing %s row\n",
			  sqlite3_column_text(s, 0), (long long)sqlite3_column_int64(s, 1),
			  sqlite3_column_text(s, 2));
		problems = 1;
	}
	sqlite3_finalize(s);
	return problems;
}

int store_begin(struct store *st)
{
	if (st->txn_depth++ > 0)
		return 0;
	int rc = run(st, prep(st, "BEGIN IMMEDIATE"));
	if (rc < 0)
		st->txn_depth = 0;
	return rc;
}

int store_commit(struct store *st)
{
	if (st->txn_depth == 0 || --st->txn_depth > 0)
		return 0;
	usec_t t0 = mono_usec();
	int rc = run(st, prep(st, "COMMIT"));
	st->last_commit = mono_usec() - t0;
	if (rc < 0) {
		log_warnx("store: commit failed: %s", sqlite3_errmsg(st->db));
		run(st, prep(st, "ROLLBACK"));
	}
	return rc;
}

void store_rollback(struct store *st)
{
	if (st->txn_depth == 0)
		return;
	st->txn_depth = 0;
	run(st, prep(st, "ROLLBACK"));
}

usec_t store_last_commit_usec(const struct store *st) { return st->last_commit; }

/* DAGs ------------------------------------------------------------------------------------- */

static char *tags_json(const struct dag *d)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < d->n_tags; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(d->tags[i]));
	char *s = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return s;
}

int store_dag_sync(struct store *st, const struct dag *d, const char *source, usec_t parsed_at)
{
	static const char upsert[] =
		"INSERT INTO dag (dag_id, fileloc, is_active, version, description, schedule, timezone, "
		"owners, tags, max_active_runs, max_active_tasks, last_parsed_time) "
		"VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
		"ON CONFLICT (dag_id) DO UPDATE SET fileloc = ?2, is_active = 1, version = ?3, "
		"description = ?4, schedule = ?5, timezone = ?6, owners = ?7, tags = ?8, "
		"max_active_runs = ?9, max_active_tasks = ?10, last_parsed_time = ?11";
	static const char version[] =
		"INSERT OR IGNORE INTO dag_version (dag_id, version, fileloc, source, created_at) "
		"VALUES (?, ?, ?, ?, ?)";
	char *tags = tags_json(d);
	sqlite3_stmt *s = prep(st, upsert);
	bind_text(s, 1, d->dag_id);
	bind_text(s, 2, d->fileloc);
	bind_text(s, 3, d->version);
	bind_text(s, 4, d->description);
	bind_text(s, 5, d->schedule);
	bind_text(s, 6, d->timezone);
	bind_text(s, 7, d->owner ? d->owner : "airflow");
	bind_text(s, 8, tags);
	sqlite3_bind_int(s, 9, d->max_active_runs);
	sqlite3_bind_int(s, 10, d->max_active_tasks);
	bind_time(s, 11, parsed_at);
	int rc = run(st, s);
	free(tags);
	if (rc < 0)
		return rc;
	s = prep(st, version);
	bind_text(s, 1, d->dag_id);
	bind_text(s, 2, d->version);
	bind_text(s, 3, d->fileloc);
	bind_text(s, 4, source);
	bind_time(s, 5, parsed_at);
	return run(st, s);
}

int store_dag_version_current(struct store *st, const char *dag_id, char **version)
{
	sqlite3_stmt *s = prep(st, "SELECT version FROM dag WHERE dag_id = ? AND is_active = 1 AND version IS NOT NULL");
	bind_text(s, 1, dag_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*version = col_text(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "dag version");
}

int store_dag_paused(struct store *st, const char *dag_id, bool *paused)
{
	sqlite3_stmt *s = prep(st, "SELECT is_paused FROM dag WHERE dag_id = ?");
	bind_text(s, 1, dag_id);
	*paused = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	return 0;
}

int store_dag_set_paused(struct store *st, const char *dag_id, bool paused)
{
	sqlite3_stmt *s = prep(st, "UPDATE dag SET is_paused = ? WHERE dag_id = ?");
	sqlite3_bind_int(s, 1, paused);
	bind_text(s, 2, dag_id);
	int rc = run(st, s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		return -ENOENT;
	return rc;
}

int store_import_error_set(struct store *st, const char *filename, int line, const char *msg, usec_t when)
{
	sqlite3_stmt *s = prep(st,
		"INSERT INTO import_error (filename, line, message, timestamp) VALUES (?1, ?2, ?3, ?4) "
		"ON CONFLICT (filename) DO UPDATE SET line = ?2, message = ?3, timestamp = ?4 "
		"WHERE message IS NOT ?3");
	bind_text(s, 1, filename);
	sqlite3_bind_int(s, 2, line);
	bind_text(s, 3, msg);
	bind_time(s, 4, when);
	return run(st, s);
}

int store_import_error_clear(struct store *st, const char *filename)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM import_error WHERE filename = ?");
	bind_text(s, 1, filename);
	return run(st, s);
}

/* A JSON array of strings, for "IN (SELECT value FROM json_each(?))". */
static char *json_strings(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	char *s = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return s;
}

int store_import_error_retain(struct store *st, const char *const *files, size_t n)
{
	char *json = json_strings(files, n);
	sqlite3_stmt *s = prep(st, "DELETE FROM import_error WHERE filename NOT IN "
				   "(SELECT value FROM json_each(?))");
	bind_text(s, 1, json);
	int rc = run(st, s);
	free(json);
	return rc;
}

/* Runs ------------------------------------------------------------------------------------- */

void run_row_free(struct run_row *r)
{
	free(r->dag_id);
	free(r->run_id);
	free(r->run_type);
	free(r->state);
	free(r->conf);
	free(r->note);
	free(r->dag_version);
	free(r->owner);
	memset(r, 0, sizeof(*r));
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void run_row_copy(struct run_row *dst, const struct run_row *src)
{
	*dst = *src;
	dst->dag_id = dup_or_null(src->dag_id);
	dst->run_id = dup_or_null(src->run_id);
	dst->run_type = dup_or_null(src->run_type);
	dst->state = dup_or_null(src->state);
	dst->conf = dup_or_null(src->conf);
	dst->note = dup_or_null(src->note);
	dst->dag_version = dup_or_null(src->dag_version);
	dst->owner = dup_or_null(src->owner);
}

#define RUN_COLS "id, dag_id, run_id, run_type, logical_date, data_interval_start, " \
		 "data_interval_end, state, conf, queued_at, start_date, end_date, note, dag_version, " \
		 "external_trigger, owner, backfill_id, updated_at"

/* As read_ti_cols: the strings copied (own) or borrowed from the statement. */
static inline void read_run_cols(sqlite3_stmt *s, struct run_row *r, bool own)
{
#define TXT(i) (own ? col_text(s, (i)) : (char *)(uintptr_t)sqlite3_column_text(s, (i)))
	r->pk = sqlite3_column_int64(s, 0);
	r->dag_id = TXT(1);
	r->run_id = TXT(2);
	r->run_type = TXT(3);
	r->logical_date = col_time(s, 4);
	r->data_interval_start = col_time(s, 5);
	r->data_interval_end = col_time(s, 6);
	r->state = TXT(7);
	r->conf = TXT(8);
	r->queued_at = col_time(s, 9);
	r->start_date = col_time(s, 10);
	r->end_date = col_time(s, 11);
	r->note = TXT(12);
	r->dag_version = TXT(13);
	r->external_trigger = sqlite3_column_int(s, 14);
	r->owner = TXT(15);
	r->backfill_id = sqlite3_column_type(s, 16) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 16);
	r->updated_at = col_time(s, 17);
#undef TXT
}

static void read_run(sqlite3_stmt *s, struct run_row *r) { read_run_cols(s, r, true); }

int store_run_insert(struct store *st, struct run_row *r)
{
	sqlite3_stmt *s = prep(st,
		"INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, data_interval_start, "
		"data_interval_end, state, conf, queued_at, start_date, end_date, note, dag_version, "
		"external_trigger, owner, backfill_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	bind_text(s, 1, r->dag_id);
	bind_text(s, 2, r->run_id);
	bind_text(s, 3, r->run_type);
	bind_time(s, 4, r->logical_date);
	bind_time(s, 5, r->data_interval_start);
	bind_time(s, 6, r->data_interval_end);
	bind_text(s, 7, r->state);
	bind_text(s, 8, r->conf ? r->conf : "{}");
	bind_time(s, 9, r->queued_at);
	bind_time(s, 10, r->start_date);
	bind_time(s, 11, r->end_date);
	bind_text(s, 12, r->note);
	bind_text(s, 13, r->dag_version);
	sqlite3_bind_int(s, 14, r->external_trigger);
	bind_text(s, 15, r->owner);
	if (r->backfill_id > 0)
		sqlite3_bind_int64(s, 16, r->backfill_id);
	else
		sqlite3_bind_null(s, 16);
	bind_time(s, 17, now_usec());
	int rc = run(st, s);
	if (rc == 0)
		r->pk = sqlite3_last_insert_rowid(st->db);
	return rc;
}

int store_run_update(struct store *st, const struct run_row *r)
{
	sqlite3_stmt *s = prep(st,
		"UPDATE dag_run SET state = ?, start_date = ?, end_date = ?, note = ?, updated_at = ? WHERE id = ?");
	bind_text(s, 1, r->state);
	bind_time(s, 2, r->start_date);
	bind_time(s, 3, r->end_date);
	bind_text(s, 4, r->note);
	bind_time(s, 5, now_usec());
	sqlite3_bind_int64(s, 6, r->pk);
	return run(st, s);
}

int store_run_delete(struct store *st, int64_t pk)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM dag_run WHERE id = ?");
	sqlite3_bind_int64(s, 1, pk);
	int rc = run(st, s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		return -ENOENT;
	return rc;
}

int store_run_get(struct store *st, const char *dag_id, const char *run_id, usec_t logical_date,
		  struct run_row *out)
{
	sqlite3_stmt *s;
	if (run_id) {
		s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ? AND run_id = ?");
		bind_text(s, 2, run_id);
	} else {
		s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ? AND logical_date = ?");
		bind_time(s, 2, logical_date);
	}
	bind_text(s, 1, dag_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		read_run(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "run get");
}

static int collect_runs(struct store *st, sqlite3_stmt *s, struct run_row **out);

int store_run_list(struct store *st, const char *dag_id, struct run_row **out)
{
	/* Two statements, so that one DAG's runs come from the (dag_id, logical_date) index in order. */
	sqlite3_stmt *s = dag_id ? prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 ORDER BY logical_date DESC")
				 : prep(st, "SELECT " RUN_COLS " FROM dag_run ORDER BY logical_date DESC, id DESC");
	if (dag_id)
		bind_text(s, 1, dag_id);
	return collect_runs(st, s, out);
}

static void rd_run(sqlite3_stmt *s, void *row) { read_run(s, row); }

int store_run_page(struct store *st, const char *dag_id, usec_t before, int limit, struct run_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND logical_date < ?2 "
				   "ORDER BY logical_date DESC LIMIT ?3");
	bind_text(s, 1, dag_id);
	sqlite3_bind_int64(s, 2, before == USEC_NONE ? INT64_MAX : before);
	sqlite3_bind_int(s, 3, limit);
	return collect_runs(st, s, out);
}

/* Steps a bound COUNT(*) statement and resets it: the count, 0 when it gives no row. */
static int count_of(sqlite3_stmt *s)
{
	int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_reset(s);
	return n;
}

int store_run_page_each(struct store *st, const char *dag_id, const char *states, int offset, int limit,
			int *total, void (*fn)(const struct run_row *r, void *ctx), void *ctx)
{
	/* Without a state filter the count reads the (dag_id, logical_date) index alone, not every
	 * run's row: that read was most of a page's cost for a DAG with thousands of runs. */
	sqlite3_stmt *s = states ? prep(st, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?1 AND "
					    "instr(?2, ',' || state || ',') > 0")
				 : prep(st, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?1");
	bind_text(s, 1, dag_id);
	if (states)
		bind_text(s, 2, states);
	*total = count_of(s);
	s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE dag_id = ?1 AND "
		     "(?2 IS NULL OR instr(?2, ',' || state || ',') > 0) ORDER BY logical_date DESC LIMIT ?3 OFFSET ?4");
	bind_text(s, 1, dag_id);
	bind_text(s, 2, states);
	sqlite3_bind_int(s, 3, limit);
	sqlite3_bind_int(s, 4, offset);
	int rc, n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct run_row r = {0};
		read_run_cols(s, &r, false);
		fn(&r, ctx);
		n++;
	}
	sqlite3_reset(s);
	done_waiting(st);
	return rc == SQLITE_DONE ? n : sql_err(st, NULL, "run page");
}

int store_run_count(struct store *st, const char *dag_id)
{
	sqlite3_stmt *s = prep(st, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?");
	bind_text(s, 1, dag_id);
	int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -EIO;
	sqlite3_reset(s);
	return n;
}

int store_ti_brief_each(struct store *st, int64_t run_pk,
			void (*fn)(void *arg, const char *task_id, int map_index, const char *state, int try_number),
			void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT task_id, map_index, state, try_number FROM task_instance WHERE run_pk = ? "
				   "ORDER BY task_id, map_index");
	sqlite3_bind_int64(s, 1, run_pk);
	int rc, n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		fn(arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1),
		   (const char *)sqlite3_column_text(s, 2), sqlite3_column_int(s, 3));
		n++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? n : -EIO;
}

int store_run_active_counts(struct store *st, void (*fn)(void *arg, const char *dag_id, const char *state, int n),
			    void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT dag_id, state, COUNT(*) FROM dag_run WHERE state IN ('queued', 'running') "
				   "GROUP BY dag_id, state");
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
		   sqlite3_column_int(s, 2));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int collect_runs(struct store *st, sqlite3_stmt *s, struct run_row **out)
{
	return collect(st, s, sizeof(**out), rd_run, (void **)out, "run list");
}

int store_run_list_owned(struct store *st, const char *state, int64_t after_id, struct run_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE state = ? AND id > ? "
				   "AND owner IS NULL ORDER BY id");
	bind_text(s, 1, state);
	sqlite3_bind_int64(s, 2, after_id);
	return collect_runs(st, s, out);
}

int store_run_last_scheduled(struct store *st, const char *dag_id, usec_t *interval_end, bool *any)
{
	sqlite3_stmt *s = prep(st, "SELECT MAX(data_interval_end), COUNT(*) FROM dag_run "
				   "WHERE dag_id = ? AND run_type = 'scheduled'");
	bind_text(s, 1, dag_id);
	int rc = sqlite3_step(s);
	*interval_end = USEC_NONE;
	*any = false;
	if (rc == SQLITE_ROW) {
		*interval_end = col_time(s, 0);
		*any = sqlite3_column_int(s, 1) > 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : sql_err(st, NULL, "last scheduled");
}

int store_state_counts(struct store *st, bool runs, void (*fn)(void *arg, const char *state, long count), void *arg)
{
	sqlite3_stmt *s = runs ? prep(st, "SELECT state, COUNT(*) FROM dag_run GROUP BY state")
			       : prep(st, "SELECT state, COUNT(*) FROM task_instance GROUP BY state");
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0), (long)sqlite3_column_int64(s, 1));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "state counts");
}

int store_import_error_count(struct store *st)
{
	sqlite3_stmt *s = prep(st, "SELECT COUNT(*) FROM import_error");
	return count_of(s);
}

int store_run_list_ended_before(struct store *st, usec_t before, struct run_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT " RUN_COLS " FROM dag_run WHERE state IN ('success', 'failed') "
				   "AND end_date < ? ORDER BY end_date");
	bind_time(s, 1, before);
	return collect_runs(st, s, out);
}

int store_run_counts(struct store *st, const char *dag_id, int counts[4])
{
	static const char *const states[4] = {"queued", "running", "success", "failed"};
	sqlite3_stmt *s = prep(st, "SELECT state, COUNT(*) FROM dag_run WHERE dag_id = ? GROUP BY state");
	int rc;
	memset(counts, 0, 4 * sizeof(int));
	bind_text(s, 1, dag_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		for (int i = 0; i < 4; i++)
			if (!strcmp((const char *)sqlite3_column_text(s, 0), states[i]))
				counts[i] = sqlite3_column_int(s, 1);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "run counts");
}

int store_run_set_backfill(struct store *st, int64_t run_pk, int64_t backfill_id)
{
	sqlite3_stmt *s = prep(st, "UPDATE dag_run SET backfill_id = ? WHERE id = ?");
	sqlite3_bind_int64(s, 1, backfill_id);
	sqlite3_bind_int64(s, 2, run_pk);
	return run(st, s);
}

int store_backfill_runs(struct store *st, int64_t backfill_id, const char *state)
{
	sqlite3_stmt *s = prep(st, "SELECT COUNT(*) FROM dag_run WHERE backfill_id = ? AND state = ?");
	sqlite3_bind_int64(s, 1, backfill_id);
	bind_text(s, 2, state);
	return count_of(s);
}

int store_backfill_fail_queued(struct store *st, int64_t backfill_id, usec_t when)
{
	sqlite3_stmt *s = prep(st, "UPDATE dag_run SET state = 'failed', end_date = ?1, updated_at = ?1, "
				   "note = 'backfill cancelled' WHERE backfill_id = ?2 AND state = 'queued'");
	bind_time(s, 1, when);
	sqlite3_bind_int64(s, 2, backfill_id);
	return run(st, s);
}

void backfill_row_free(struct backfill_row *b)
{
	free(b->dag_id);
	free(b->dag_run_conf);
	free(b->reprocess_behavior);
	memset(b, 0, sizeof(*b));
}

#define BF_COLS "id, dag_id, from_date, to_date, dag_run_conf, reprocess_behavior, max_active_runs, " \
		"run_backwards, is_paused, created_at, completed_at, updated_at"

static void read_backfill(sqlite3_stmt *s, struct backfill_row *b)
{
	b->id = sqlite3_column_int64(s, 0);
	b->dag_id = col_text(s, 1);
	b->from_date = col_time(s, 2);
	b->to_date = col_time(s, 3);
	b->dag_run_conf = col_text(s, 4);
	b->reprocess_behavior = col_text(s, 5);
	b->max_active_runs = sqlite3_column_int(s, 6);
	b->run_backwards = sqlite3_column_int(s, 7);
	b->is_paused = sqlite3_column_int(s, 8);
	b->created_at = col_time(s, 9);
	b->completed_at = col_time(s, 10);
	b->updated_at = col_time(s, 11);
}

static void rd_backfill(sqlite3_stmt *s, void *row) { read_backfill(s, row); }

int store_backfill_insert(struct store *st, struct backfill_row *b)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO backfill (dag_id, from_date, to_date, dag_run_conf, "
				   "reprocess_behavior, max_active_runs, run_backwards, is_paused, created_at, "
				   "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	bind_text(s, 1, b->dag_id);
	bind_time(s, 2, b->from_date);
	bind_time(s, 3, b->to_date);
	bind_text(s, 4, b->dag_run_conf ? b->dag_run_conf : "{}");
	bind_text(s, 5, b->reprocess_behavior);
	sqlite3_bind_int(s, 6, b->max_active_runs);
	sqlite3_bind_int(s, 7, b->run_backwards);
	sqlite3_bind_int(s, 8, b->is_paused);
	bind_time(s, 9, b->created_at);
	bind_time(s, 10, b->updated_at);
	int rc = run(st, s);
	if (rc == 0)
		b->id = sqlite3_last_insert_rowid(st->db);
	return rc;
}

int store_backfill_list(struct store *st, const char *dag_id, bool active_only, struct backfill_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT " BF_COLS " FROM backfill WHERE (?1 IS NULL OR dag_id = ?1) "
				   "AND (?2 = 0 OR completed_at IS NULL) ORDER BY id");
	bind_text(s, 1, dag_id);
	sqlite3_bind_int(s, 2, active_only);
	return collect(st, s, sizeof(**out), rd_backfill, (void **)out, "backfill list");
}

int store_backfill_get(struct store *st, int64_t id, struct backfill_row *out)
{
	sqlite3_stmt *s = prep(st, "SELECT " BF_COLS " FROM backfill WHERE id = ?");
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		read_backfill(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "backfill get");
}

int store_backfill_update(struct store *st, int64_t id, bool paused, usec_t completed_at)
{
	sqlite3_stmt *s = prep(st, "UPDATE backfill SET is_paused = ?1, completed_at = COALESCE(completed_at, ?2), "
				   "updated_at = ?3 WHERE id = ?4");
	sqlite3_bind_int(s, 1, paused);
	bind_time(s, 2, completed_at);
	bind_time(s, 3, now_usec());
	sqlite3_bind_int64(s, 4, id);
	int rc = run(st, s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		return -ENOENT;
	return rc;
}

/* Task instances ------------------------------------------------------------------------------ */

void ti_row_init(struct ti_row *t)
{
	memset(t, 0, sizeof(*t));
	t->map_index = -1;
	t->pool_slots = 1;
	t->priority_weight = 1;
	t->queued_when = t->start_date = t->end_date = t->next_retry_at = t->first_poke_at = USEC_NONE;
	t->updated_at = USEC_NONE;
	t->duration = -1;
	t->exit_code = TI_NO_EXIT;
}

void ti_row_copy(struct ti_row *dst, const struct ti_row *src)
{
	*dst = *src;
	dst->dag_id = dup_or_null(src->dag_id);
	dst->run_id = dup_or_null(src->run_id);
	dst->task_id = dup_or_null(src->task_id);
	dst->state = dup_or_null(src->state);
	dst->operator_name = dup_or_null(src->operator_name);
	dst->executor = dup_or_null(src->executor);
	dst->hostname = dup_or_null(src->hostname);
	dst->external_id = dup_or_null(src->external_id);
	dst->pool = dup_or_null(src->pool);
	dst->note = dup_or_null(src->note);
}

void ti_row_free(struct ti_row *t)
{
	free(t->dag_id);
	free(t->run_id);
	free(t->task_id);
	free(t->state);
	free(t->operator_name);
	free(t->executor);
	free(t->hostname);
	free(t->external_id);
	free(t->pool);
	free(t->note);
	ti_row_init(t);
}

#define TI_COLS "id, run_pk, dag_id, run_id, task_id, map_index, state, try_number, max_tries, " \
		"operator, executor, hostname, pid, external_id, pool, pool_slots, priority_weight, " \
		"queued_when, start_date, end_date, duration, exit_code, next_retry_at, first_poke_at, note, " \
		"updated_at"

/* A row's columns into t: its strings copied (own) or borrowed from the statement (valid until the
 * next step or reset; no ti_row_free). */
static inline void read_ti_cols(sqlite3_stmt *s, struct ti_row *t, bool own)
{
#define TXT(i) (own ? col_text(s, (i)) : (char *)(uintptr_t)sqlite3_column_text(s, (i)))
	ti_row_init(t);
	t->pk = sqlite3_column_int64(s, 0);
	t->run_pk = sqlite3_column_int64(s, 1);
	t->dag_id = TXT(2);
	t->run_id = TXT(3);
	t->task_id = TXT(4);
	t->map_index = sqlite3_column_int(s, 5);
	t->state = TXT(6);
	t->try_number = sqlite3_column_int(s, 7);
	t->max_tries = sqlite3_column_int(s, 8);
	t->operator_name = TXT(9);
	t->executor = TXT(10);
	t->hostname = TXT(11);
	t->pid = sqlite3_column_int(s, 12);
	t->external_id = TXT(13);
	t->pool = TXT(14);
	t->pool_slots = sqlite3_column_int(s, 15);
	t->priority_weight = sqlite3_column_int(s, 16);
	t->queued_when = col_time(s, 17);
	t->start_date = col_time(s, 18);
	t->end_date = col_time(s, 19);
	t->duration = sqlite3_column_type(s, 20) == SQLITE_NULL ? -1 : sqlite3_column_double(s, 20);
	t->exit_code = sqlite3_column_type(s, 21) == SQLITE_NULL ? TI_NO_EXIT : sqlite3_column_int(s, 21);
	t->next_retry_at = col_time(s, 22);
	t->first_poke_at = col_time(s, 23);
	t->note = TXT(24);
	t->updated_at = col_time(s, 25);
#undef TXT
}

static void read_ti(sqlite3_stmt *s, struct ti_row *t) { read_ti_cols(s, t, true); }

/* Binds the mutable columns of a task instance at positions 1..17 (shared by insert/update). */
static void bind_ti_mutable(sqlite3_stmt *s, const struct ti_row *t)
{
	bind_text(s, 1, t->state);
	sqlite3_bind_int(s, 2, t->try_number);
	sqlite3_bind_int(s, 3, t->max_tries);
	bind_text(s, 4, t->executor);
	bind_text(s, 5, t->hostname);
	if (t->pid > 0)
		sqlite3_bind_int(s, 6, t->pid);
	else
		sqlite3_bind_null(s, 6);
	bind_text(s, 7, t->external_id);
	bind_text(s, 8, t->pool ? t->pool : "default_pool");
	sqlite3_bind_int(s, 9, t->pool_slots);
	sqlite3_bind_int(s, 10, t->priority_weight);
	bind_time(s, 11, t->queued_when);
	bind_time(s, 12, t->start_date);
	bind_time(s, 13, t->end_date);
	if (t->duration >= 0)
		sqlite3_bind_double(s, 14, t->duration);
	else
		sqlite3_bind_null(s, 14);
	if (t->exit_code != TI_NO_EXIT)
		sqlite3_bind_int(s, 15, t->exit_code);
	else
		sqlite3_bind_null(s, 15);
	bind_time(s, 16, t->next_retry_at);
	bind_time(s, 17, t->first_poke_at);
}

static void rd_ti(sqlite3_stmt *s, void *row) { read_ti(s, row); }

int store_ti_insert(struct store *st, struct ti_row *t)
{
	sqlite3_stmt *s = prep(st,
		"INSERT INTO task_instance (state, try_number, max_tries, executor, hostname, pid, "
		"external_id, pool, pool_slots, priority_weight, queued_when, start_date, end_date, "
		"duration, exit_code, next_retry_at, first_poke_at, run_pk, dag_id, run_id, task_id, "
		"map_index, operator, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
		"?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)");
	bind_ti_mutable(s, t);
	sqlite3_bind_int64(s, 18, t->run_pk);
	bind_text(s, 19, t->dag_id);
	bind_text(s, 20, t->run_id);
	bind_text(s, 21, t->task_id);
	sqlite3_bind_int(s, 22, t->map_index);
	bind_text(s, 23, t->operator_name);
	bind_time(s, 24, now_usec());
	int rc = run(st, s);
	if (rc == 0)
		t->pk = sqlite3_last_insert_rowid(st->db);
	return rc;
}

int store_ti_update(struct store *st, const struct ti_row *t)
{
	sqlite3_stmt *s = prep(st,
		"UPDATE task_instance SET state = ?1, try_number = ?2, max_tries = ?3, executor = ?4, "
		"hostname = ?5, pid = ?6, external_id = ?7, pool = ?8, pool_slots = ?9, "
		"priority_weight = ?10, queued_when = ?11, start_date = ?12, end_date = ?13, "
		"duration = ?14, exit_code = ?15, next_retry_at = ?16, first_poke_at = ?17, map_index = ?18, "
		"updated_at = ?20 WHERE id = ?19");
	bind_ti_mutable(s, t);
	sqlite3_bind_int(s, 18, t->map_index);
	sqlite3_bind_int64(s, 19, t->pk);
	bind_time(s, 20, now_usec());
	return run(st, s);
}

int store_ti_list(struct store *st, int64_t run_pk, struct ti_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ? "
				   "ORDER BY task_id, map_index");
	sqlite3_bind_int64(s, 1, run_pk);
	return collect(st, s, sizeof(**out), rd_ti, (void **)out, "ti list");
}

int store_ti_page_each(struct store *st, int64_t run_pk, int offset, int limit, int *total,
		       void (*fn)(const struct ti_row *t, void *ctx), void *ctx)
{
	sqlite3_stmt *s = prep(st, "SELECT COUNT(*) FROM task_instance WHERE run_pk = ?");
	sqlite3_bind_int64(s, 1, run_pk);
	*total = count_of(s);
	s = prep(st, "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ? ORDER BY task_id, map_index "
		     "LIMIT ? OFFSET ?");
	sqlite3_bind_int64(s, 1, run_pk);
	sqlite3_bind_int(s, 2, limit);
	sqlite3_bind_int(s, 3, offset);
	int rc, n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ti_row t;
		read_ti_cols(s, &t, false);
		fn(&t, ctx);
		n++;
	}
	sqlite3_reset(s);
	done_waiting(st);
	return rc == SQLITE_DONE ? n : sql_err(st, NULL, "ti page");
}

int store_ti_get(struct store *st, int64_t run_pk, const char *task_id, int map_index, struct ti_row *out)
{
	sqlite3_stmt *s = prep(st, "SELECT " TI_COLS " FROM task_instance WHERE run_pk = ? AND "
				   "task_id = ? AND map_index = ?");
	sqlite3_bind_int64(s, 1, run_pk);
	bind_text(s, 2, task_id);
	sqlite3_bind_int(s, 3, map_index);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		read_ti(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "ti get");
}

int store_ti_set_state(struct store *st, int64_t ti_pk, const char *state, usec_t when)
{
	sqlite3_stmt *s = prep(st, "UPDATE task_instance SET state = ?1, end_date = COALESCE(end_date, ?2), "
				   "next_retry_at = NULL, updated_at = ?2 WHERE id = ?3");
	bind_text(s, 1, state);
	bind_time(s, 2, when);
	sqlite3_bind_int64(s, 3, ti_pk);
	return run(st, s);
}

int store_ti_set_note(struct store *st, int64_t ti_pk, const char *note)
{
	sqlite3_stmt *s = prep(st, "UPDATE task_instance SET note = ?1, updated_at = ?2 WHERE id = ?3");
	bind_text(s, 1, note);
	bind_time(s, 2, now_usec());
	sqlite3_bind_int64(s, 3, ti_pk);
	int rc = run(st, s);
	return rc == 0 && sqlite3_changes(st->db) == 0 ? -ENOENT : rc;
}

int store_run_set_note(struct store *st, int64_t pk, const char *note)
{
	sqlite3_stmt *s = prep(st, "UPDATE dag_run SET note = ?1, updated_at = ?2 WHERE id = ?3");
	bind_text(s, 1, note);
	bind_time(s, 2, now_usec());
	sqlite3_bind_int64(s, 3, pk);
	int rc = run(st, s);
	return rc == 0 && sqlite3_changes(st->db) == 0 ? -ENOENT : rc;
}

int store_run_requeue(struct store *st, int64_t pk)
{
	/* The daemon drives it from now on, whoever ran it before (a `dags test`, say). */
	sqlite3_stmt *s = prep(st, "UPDATE dag_run SET state = 'queued', end_date = NULL, owner = NULL, "
				   "queued_at = ?1, updated_at = ?1 WHERE id = ?2");
	bind_time(s, 1, now_usec());
	sqlite3_bind_int64(s, 2, pk);
	return run(st, s);
}

/* Tries --------------------------------------------------------------------------------------- */

void try_row_free(struct try_row *t)
{
	free(t->state);
	free(t->executor);
	free(t->hostname);
	free(t->external_id);
	free(t->log_path);
	free(t->message);
	memset(t, 0, sizeof(*t));
}

int store_try_put(struct store *st, const struct try_row *t)
{
	sqlite3_stmt *s = prep(st,
		"INSERT OR REPLACE INTO task_try (ti_id, try_number, state, executor, hostname, pid, "
		"external_id, queued_when, start_date, end_date, duration, exit_code, log_path, message) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	sqlite3_bind_int64(s, 1, t->ti_pk);
	sqlite3_bind_int(s, 2, t->try_number);
	bind_text(s, 3, t->state);
	bind_text(s, 4, t->executor);
	bind_text(s, 5, t->hostname);
	if (t->pid > 0)
		sqlite3_bind_int(s, 6, t->pid);
	else
		sqlite3_bind_null(s, 6);
	bind_text(s, 7, t->external_id);
	bind_time(s, 8, t->queued_when);
	bind_time(s, 9, t->start_date);
	bind_time(s, 10, t->end_date);
	if (t->duration >= 0)
		sqlite3_bind_double(s, 11, t->duration);
	else
		sqlite3_bind_null(s, 11);
	if (t->exit_code != TI_NO_EXIT)
		sqlite3_bind_int(s, 12, t->exit_code);
	else
		sqlite3_bind_null(s, 12);
	bind_text(s, 13, t->log_path);
	bind_text(s, 14, t->message);
	return run(st, s);
}

static void read_try(sqlite3_stmt *s, void *row)
{
	struct try_row *t = row;
	t->ti_pk = sqlite3_column_int64(s, 0);
	t->try_number = sqlite3_column_int(s, 1);
	t->state = col_text(s, 2);
	t->executor = col_text(s, 3);
	t->hostname = col_text(s, 4);
	t->pid = sqlite3_column_int(s, 5);
	t->external_id = col_text(s, 6);
	t->queued_when = col_time(s, 7);
	t->start_date = col_time(s, 8);
	t->end_date = col_time(s, 9);
	t->duration = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 : sqlite3_column_double(s, 10);
	t->exit_code = sqlite3_column_type(s, 11) == SQLITE_NULL ? TI_NO_EXIT : sqlite3_column_int(s, 11);
	t->log_path = col_text(s, 12);
	t->message = col_text(s, 13);
}

int store_try_list(struct store *st, int64_t ti_pk, struct try_row **out)
{
	sqlite3_stmt *s = prep(st,
		"SELECT ti_id, try_number, state, executor, hostname, pid, external_id, queued_when, "
		"start_date, end_date, duration, exit_code, log_path, message FROM task_try "
		"WHERE ti_id = ? ORDER BY try_number");
	sqlite3_bind_int64(s, 1, ti_pk);
	return collect(st, s, sizeof(**out), read_try, (void **)out, "try list");
}

/* Outputs ------------------------------------------------------------------------------------- */

int store_output_put(struct store *st, int64_t ti_pk, const char *key, const char *value, usec_t when)
{
	sqlite3_stmt *s = prep(st, "INSERT OR REPLACE INTO task_output (ti_id, key, value, timestamp) "
				   "VALUES (?, ?, ?, ?)");
	sqlite3_bind_int64(s, 1, ti_pk);
	bind_text(s, 2, key);
	bind_text(s, 3, value);
	bind_time(s, 4, when);
	return run(st, s);
}

int store_output_clear(struct store *st, int64_t ti_pk)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM task_output WHERE ti_id = ?");
	sqlite3_bind_int64(s, 1, ti_pk);
	return run(st, s);
}

int store_output_each(struct store *st, int64_t ti_pk,
		      int (*fn)(void *arg, const char *key, const char *value), void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT key, value FROM task_output WHERE ti_id = ? ORDER BY key");
	int rc;
	sqlite3_bind_int64(s, 1, ti_pk);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn(arg, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1)))
			break;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "output list");
}

int store_dag_version_source(struct store *st, const char *dag_id, const char *version,
			     char **source, char **fileloc)
{
	sqlite3_stmt *s = prep(st, "SELECT source, fileloc FROM dag_version WHERE dag_id = ? AND version = ?");
	bind_text(s, 1, dag_id);
	bind_text(s, 2, version);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*source = col_text(s, 0);
		*fileloc = col_text(s, 1);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "dag version");
}

int store_dag_each(struct store *st, void (*fn)(void *arg, const char *dag_id, bool paused, bool active),
		   void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT dag_id, is_paused, is_active FROM dag ORDER BY dag_id");
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1),
		   sqlite3_column_int(s, 2));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "dag list");
}

int store_dags_set_active(struct store *st, const char *const *ids, size_t n)
{
	char *json = json_strings(ids, n);
	sqlite3_stmt *s = prep(st, "UPDATE dag SET is_active = (dag_id IN (SELECT value FROM json_each(?1))) "
				   "WHERE is_active != (dag_id IN (SELECT value FROM json_each(?1)))");
	bind_text(s, 1, json);
	int rc = run(st, s);
	free(json);
	return rc;
}

void pool_row_free(struct pool_row *p)
{
	free(p->name);
	free(p->description);
	memset(p, 0, sizeof(*p));
}

static void read_pool(sqlite3_stmt *s, void *row)
{
	struct pool_row *p = row;
	p->name = col_text(s, 0);
	p->slots = sqlite3_column_int(s, 1);
	p->description = col_text(s, 2);
}

int store_pool_list(struct store *st, struct pool_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT name, slots, description FROM pool ORDER BY name");
	return collect(st, s, sizeof(**out), read_pool, (void **)out, "pool list");
}

int store_pool_set(struct store *st, const char *name, int slots, const char *description)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO pool (name, slots, description) VALUES (?1, ?2, ?3) "
				   "ON CONFLICT (name) DO UPDATE SET slots = ?2, "
				   "description = COALESCE(?3, description)");
	bind_text(s, 1, name);
	sqlite3_bind_int(s, 2, slots);
	bind_text(s, 3, description);
	return run(st, s);
}

int store_pool_delete(struct store *st, const char *name)
{
	if (!strcmp(name, "default_pool"))
		return -EPERM;
	sqlite3_stmt *s = prep(st, "DELETE FROM pool WHERE name = ?");
	bind_text(s, 1, name);
	int rc = run(st, s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		return -ENOENT;
	return rc;
}

void dag_row_free(struct dag_row *d)
{
	free(d->dag_id);
	free(d->fileloc);
	free(d->version);
	free(d->description);
	free(d->schedule);
	free(d->timezone);
	free(d->owners);
	free(d->tags);
	memset(d, 0, sizeof(*d));
}

static void read_dag_row(sqlite3_stmt *s, void *row)
{
	struct dag_row *d = row;
	d->dag_id = col_text(s, 0);
	d->fileloc = col_text(s, 1);
	d->is_paused = sqlite3_column_int(s, 2);
	d->is_active = sqlite3_column_int(s, 3);
	d->version = col_text(s, 4);
	d->description = col_text(s, 5);
	d->schedule = col_text(s, 6);
	d->timezone = col_text(s, 7);
	d->owners = col_text(s, 8);
	d->tags = col_text(s, 9);
	d->max_active_runs = sqlite3_column_int(s, 10);
	d->max_active_tasks = sqlite3_column_int(s, 11);
	d->last_parsed_time = col_time(s, 12);
	d->has_import_errors = sqlite3_column_int(s, 13);
	d->next_dagrun = col_time(s, 14);
	d->next_interval_start = col_time(s, 15);
	d->next_interval_end = col_time(s, 16);
}

#define DAG_ROW_SQL "SELECT dag_id, fileloc, is_paused, is_active, version, description, schedule, timezone, " \
	"owners, tags, max_active_runs, max_active_tasks, last_parsed_time, " \
	"EXISTS (SELECT 1 FROM import_error e WHERE e.filename = dag.fileloc), " \
	"next_dagrun, next_dagrun_data_interval_start, next_dagrun_data_interval_end FROM dag "

int store_dag_row(struct store *st, const char *dag_id, struct dag_row *out)
{
	sqlite3_stmt *s = prep(st, DAG_ROW_SQL "WHERE dag_id = ?");
	bind_text(s, 1, dag_id);
	struct dag_row *rows = NULL;
	int n = collect(st, s, sizeof(*rows), read_dag_row, (void **)&rows, "dag row");
	if (n == 1)
		*out = rows[0];
	free(rows);
	return n < 0 ? n : n == 1 ? 0 : -ENOENT;
}

int store_dag_set_next(struct store *st, const char *dag_id, usec_t start, usec_t end)
{
	sqlite3_stmt *s = prep(st, "UPDATE dag SET next_dagrun = ?2, next_dagrun_data_interval_start = ?2, "
				   "next_dagrun_data_interval_end = ?3 WHERE dag_id = ?1");
	bind_text(s, 1, dag_id);
	bind_time(s, 2, start);
	bind_time(s, 3, end);
	return run(st, s);
}

int store_dag_rows(struct store *st, bool all, struct dag_row **out)
{
	sqlite3_stmt *s = prep(st, DAG_ROW_SQL "WHERE ?1 OR is_active = 1 ORDER BY dag_id");
	sqlite3_bind_int(s, 1, all);
	return collect(st, s, sizeof(**out), read_dag_row, (void **)out, "dag rows");
}

void import_error_row_free(struct import_error_row *e)
{
	free(e->filename);
	free(e->message);
	memset(e, 0, sizeof(*e));
}

static void read_import_error(sqlite3_stmt *s, void *row)
{
	struct import_error_row *e = row;
	e->id = sqlite3_column_int64(s, 0);
	e->filename = col_text(s, 1);
	e->message = col_text(s, 2);
	e->timestamp = col_time(s, 3);
}

int store_import_error_list(struct store *st, struct import_error_row **out)
{
	sqlite3_stmt *s = prep(st, "SELECT id, filename, message, timestamp FROM import_error ORDER BY id");
	return collect(st, s, sizeof(**out), read_import_error, (void **)out, "import errors");
}

int store_pool_usage(struct store *st, const char *pool, int *running, int *queued, int *scheduled)
{
	sqlite3_stmt *s = prep(st, "SELECT state, SUM(pool_slots) FROM task_instance WHERE pool = ? AND "
				   "state IN ('running', 'queued', 'scheduled') GROUP BY state");
	int rc;
	*running = *queued = *scheduled = 0;
	bind_text(s, 1, pool);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(s, 0);
		int n = sqlite3_column_int(s, 1);
		if (!strcmp(state, "running"))
			*running = n;
		else if (!strcmp(state, "queued"))
			*queued = n;
		else
			*scheduled = n;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "pool usage");
}

int store_user_count(struct store *st)
{
	sqlite3_stmt *s = prep(st, "SELECT COUNT(*) FROM user");
	int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_reset(s);
	return n;
}

int store_user_put(struct store *st, const char *username, const char *role, const char *password_hash)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO user (username, role, password_hash, created_at, updated_at) "
				   "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (username) DO UPDATE SET role = ?2, "
				   "password_hash = ?3, updated_at = ?4");
	bind_text(s, 1, username);
	bind_text(s, 2, role);
	bind_text(s, 3, password_hash);
	bind_time(s, 4, now_usec());
	return run(st, s);
}

int store_user_get(struct store *st, const char *username, char **password_hash, char **role)
{
	sqlite3_stmt *s = prep(st, "SELECT password_hash, role FROM user WHERE username = ?");
	bind_text(s, 1, username);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*password_hash = col_text(s, 0);
		*role = col_text(s, 1);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "user get");
}

int store_token_add(struct store *st, const char *name, const char *token_hash, const char *role)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO api_token (name, token_hash, role, created_at) VALUES (?, ?, ?, ?)");
	bind_text(s, 1, name);
	bind_text(s, 2, token_hash);
	bind_text(s, 3, role);
	bind_time(s, 4, now_usec());
	return run(st, s);
}

int store_token_role(struct store *st, const char *token_hash, char **role)
{
	sqlite3_stmt *s = prep(st, "SELECT role FROM api_token WHERE token_hash = ?");
	bind_text(s, 1, token_hash);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*role = col_text(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sql_err(st, NULL, "token get");
}

int store_user_delete(struct store *st, const char *username)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM user WHERE username = ?");
	bind_text(s, 1, username);
	int rc = run(st, s);
	return rc ? rc : sqlite3_changes(st->db) ? 0 : -ENOENT;
}

int store_token_delete(struct store *st, const char *name)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM api_token WHERE name = ?");
	bind_text(s, 1, name);
	int rc = run(st, s);
	return rc ? rc : sqlite3_changes(st->db) ? 0 : -ENOENT;
}

int store_token_each(struct store *st, void (*fn)(void *arg, const char *name, const char *role, usec_t created),
		     void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT name, role, created_at FROM api_token ORDER BY name");
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
		   col_time(s, 2));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(st, NULL, "token list");
}

int store_pool_slots(struct store *st, const char *name, int *slots)
{
	sqlite3_stmt *s = prep(st, "SELECT slots FROM pool WHERE name = ?");
	bind_text(s, 1, name);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*slots = sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}

/* For the store's other parts (store_int.h). */
sqlite3_stmt *store_int_prep(struct store *st, const char *sql) { return prep(st, sql); }
int store_int_run(struct store *st, sqlite3_stmt *s) { return run(st, s); }
int store_int_collect(struct store *st, sqlite3_stmt *s, size_t size, void (*rd)(sqlite3_stmt *, void *),
		      void **out, const char *what)
{
	return collect(st, s, size, rd, out, what);
}
int store_int_changes(struct store *st) { return sqlite3_changes(st->db); }
int64_t store_int_last_id(struct store *st) { return sqlite3_last_insert_rowid(st->db); }
sqlite3 *store_int_db(struct store *st) { return st->db; }
