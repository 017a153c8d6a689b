/* The store: the only code that speaks SQL. SQLite in WAL mode with synchronous=NORMAL.
 *
 * Connections: the process that runs DAGs (the daemon, or `dags test`) owns the one writer
 * connection and groups state changes into short transactions (store_begin/store_commit);
 * readers (CLI listings, later the API) open their own connections with STORE_READONLY.
 * Every connection has a busy timeout and writers take the write lock up front (BEGIN
 * IMMEDIATE), so "database is locked" is waited out rather than shown to a user.
 *
 * Times are usec_t (microseconds since the epoch, UTC); USEC_NONE is stored as NULL.
 * Rows returned to callers are owned by the caller and freed with the matching *_free. */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "orchestrator/dag.h"
#include "base/util.h"

struct store;

enum store_flags {
	STORE_READONLY = 1 << 0,   /* open read-only; fails if the database does not exist */
	STORE_NO_MIGRATE = 1 << 1, /* do not apply migrations (db check, db migrate) */
	STORE_SYNC_FULL = 1 << 2,  /* PRAGMA synchronous=FULL: every commit survives a power cut */
};

/* Number of migrations compiled into this binary = the schema level it expects. */
int store_schema_target(void);

/* Opens (creating if needed, unless read-only) the database at path and applies pending
 * migrations. A database whose level is newer than this binary is refused. Returns 0 or
 * -errno with *err set (malloc'd). */
int store_open(const char *path, int flags, struct store **out, char **err);
void store_close(struct store *st);

/* Applies pending migrations, each in its own transaction. from and to get the levels.
 * Returns 0 or a negative error with *err set. */
int store_migrate(struct store *st, int *from, int *to, char **err);
/* The same, stopping at level upto (for the tests that upgrade from every earlier level). */
int store_migrate_upto(struct store *st, int upto, int *from, int *to, char **err);
/* Current PRAGMA user_version. */
int store_schema_level(struct store *st);
/* Runs PRAGMA integrity_check and foreign_key_check; appends findings to report.
 * Returns 0 when everything is ok, 1 when problems were found, negative on error. */
int store_integrity(struct store *st, struct strbuf *report);

/* Transactions: begin takes the write lock at once. Nested calls are counted; only the
 * outermost commit commits. Return 0 or a negative error. */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/* Microseconds the last commit took (for metrics). */
usec_t store_last_commit_usec(const struct store *st);
/* Since when (wall clock) a writable connection of this process has been waiting for the
 * database's lock that another process holds; 0 when none waits. */
usec_t store_lock_wait_since(void);
/* How long st waits for a lock another process holds before a statement fails with -EBUSY
 * (0: the default, a minute). */
void store_set_busy_limit(struct store *st, usec_t limit);

/* DAGs and import errors ------------------------------------------------------------------ */

/* Records a successfully parsed DAG: upserts its row (keeping is_paused) and its version. */
int store_dag_sync(struct store *st, const struct dag *d, const char *source, usec_t parsed_at);
/* The latest good version of a DAG as recorded by the daemon (malloc'd), or -ENOENT. */
int store_dag_version_current(struct store *st, const char *dag_id, char **version);
/* Whether the DAG is paused; false when it has no row. */
int store_dag_paused(struct store *st, const char *dag_id, bool *paused);
int store_dag_set_paused(struct store *st, const char *dag_id, bool paused);
/* Records (replaces) the import error of a file / removes it. */
int store_import_error_set(struct store *st, const char *filename, int line, const char *msg, usec_t when);
int store_import_error_clear(struct store *st, const char *filename);
/* Removes the import errors of every file not in files[0..n). */
int store_import_error_retain(struct store *st, const char *const *files, size_t n);

/* DAG runs ---------------------------------------------------------------------------------- */

struct run_row {
	int64_t pk;
	char *dag_id, *run_id, *run_type, *state;
	usec_t logical_date, data_interval_start, data_interval_end;
	char *conf;            /* JSON object text */
	usec_t queued_at, start_date, end_date;
	char *note, *dag_version;
	bool external_trigger;
	char *owner;           /* NULL = the daemon; "test:<pid>" = a foreground `dags test` */
	int64_t backfill_id;   /* 0 = not part of a backfill */
	usec_t updated_at;     /* the last write of the row (set by the store) */
};
void run_row_free(struct run_row *r);
/* Deep copy. */
void run_row_copy(struct run_row *dst, const struct run_row *src);

/* Inserts r (pk is set). Returns -EEXIST when the run_id or logical date is taken. */
int store_run_insert(struct store *st, struct run_row *r);
/* Writes state, start_date, end_date and note of r. */
int store_run_update(struct store *st, const struct run_row *r);
/* Deletes a run with its task instances, tries and outputs. -ENOENT when missing. */
int store_run_delete(struct store *st, int64_t pk);
/* Finds a run by run_id, or by logical date when run_id is NULL. -ENOENT when missing. */
int store_run_get(struct store *st, const char *dag_id, const char *run_id, usec_t logical_date,
		  struct run_row *out);
/* Lists the runs of a DAG (all DAGs when dag_id is NULL), newest logical date first.
 * Returns the count or a negative error; *out is a malloc'd array (free each with run_row_free). */
int store_run_list(struct store *st, const char *dag_id, struct run_row **out);
/* At most limit runs of dag_id with a logical date before `before` (USEC_NONE: any), newest
 * first: one page of a grid, from the (dag_id, logical_date) index. Returns the count. */
int store_run_page(struct store *st, const char *dag_id, usec_t before, int limit, struct run_row **out);
/* Calls fn for each of the runs [offset, offset + limit) of dag_id, newest first, of the given
 * states only (states: ",success,failed," or NULL for all), and sets *total to how many match in
 * all. The row is borrowed as in store_ti_page_each (valid during the call, no run_row_free).
 * Returns the page's count or negative. */
int store_run_page_each(struct store *st, const char *dag_id, const char *states, int offset, int limit,
			int *total, void (*fn)(const struct run_row *r, void *ctx), void *ctx);
/* How many runs dag_id has. */
int store_run_count(struct store *st, const char *dag_id);
/* Calls fn for each task instance of a run (task_id, map_index order) with what a grid cell
 * shows; returns how many, or negative. */
int store_ti_brief_each(struct store *st, int64_t run_pk,
			void (*fn)(void *arg, const char *task_id, int map_index, const char *state, int try_number),
			void *arg);
/* Calls fn with the number of queued and of running runs of each DAG that has some. */
int store_run_active_counts(struct store *st, void (*fn)(void *arg, const char *dag_id, const char *state, int n),
			    void *arg);

/* Runs the daemon owns (owner IS NULL) in state `state` with id > after_id, oldest id first.
 * Returns the count or negative; *out is malloc'd. */
int store_run_list_owned(struct store *st, const char *state, int64_t after_id, struct run_row **out);
/* The data_interval_end of the latest scheduled run of a DAG (USEC_NONE when none) and
 * whether any scheduled run exists. */
int store_run_last_scheduled(struct store *st, const char *dag_id, usec_t *interval_end, bool *any);

/* For metrics: calls fn(state, count) for task instances (runs when `runs`) grouped by state. */
int store_state_counts(struct store *st, bool runs, void (*fn)(void *arg, const char *state, long count), void *arg);
/* Number of files with an import error. */
int store_import_error_count(struct store *st);

/* Finished runs (success or failed) that ended before `before`, oldest first. */
int store_run_list_ended_before(struct store *st, usec_t before, struct run_row **out);

/* Runs of a DAG per state: counts[0..3] = queued, running, success, failed. */
int store_run_counts(struct store *st, const char *dag_id, int counts[4]);
/* Hands a run to a backfill (reprocessing an existing run). */
int store_run_set_backfill(struct store *st, int64_t run_pk, int64_t backfill_id);
/* Number of runs of a backfill in state (e.g. "queued", "running"). */
int store_backfill_runs(struct store *st, int64_t backfill_id, const char *state);
/* Fails the runs of a backfill that have not started (a cancel). */
int store_backfill_fail_queued(struct store *st, int64_t backfill_id, usec_t when);

/* Backfills (Airflow 3 shape). */
struct backfill_row {
	int64_t id;
	char *dag_id, *dag_run_conf, *reprocess_behavior;
	usec_t from_date, to_date, created_at, completed_at, updated_at;
	int max_active_runs;
	bool run_backwards, is_paused;
};
void backfill_row_free(struct backfill_row *b);
/* Inserts b (id is set). */
int store_backfill_insert(struct store *st, struct backfill_row *b);
/* Backfills of dag_id (all when NULL), optionally only those not completed. */
int store_backfill_list(struct store *st, const char *dag_id, bool active_only, struct backfill_row **out);
int store_backfill_get(struct store *st, int64_t id, struct backfill_row *out);
/* Sets is_paused / completed_at (USEC_NONE leaves completed_at as is). */
int store_backfill_update(struct store *st, int64_t id, bool paused, usec_t completed_at);

/* Task instances ------------------------------------------------------------------------------ */

struct ti_row {
	int64_t pk, run_pk;
	char *dag_id, *run_id, *task_id;
	int map_index;
	char *state;           /* Airflow state name; "none" for null */
	int try_number, max_tries;
	char *operator_name, *executor, *hostname, *external_id, *pool;
	int pid, pool_slots, priority_weight;
	usec_t queued_when, start_date, end_date, next_retry_at, first_poke_at;
	double duration;       /* seconds; < 0 = unknown */
	int exit_code;         /* INT32_MIN = none */
	char *note;
	usec_t updated_at;     /* the last write of the row (set by the store) */
};
#define TI_NO_EXIT INT32_MIN
void ti_row_init(struct ti_row *t);
void ti_row_free(struct ti_row *t);
/* Deep copy (dst is overwritten, not freed). */
void ti_row_copy(struct ti_row *dst, const struct ti_row *src);

int store_ti_insert(struct store *st, struct ti_row *t);
/* Writes every mutable field of t (state, tries, times, pid, exit code, ...). */
int store_ti_update(struct store *st, const struct ti_row *t);
/* Task instances of a run ordered by task_id, map_index. Returns the count or negative. */
int store_ti_list(struct store *st, int64_t run_pk, struct ti_row **out);
/* Calls fn for each row of the page [offset, offset + limit) of that list, and sets *total to the
 * run's instance count. The row is borrowed: its strings belong to the statement and last only
 * for the call (no copies, no ti_row_free: the API's list writes each row as it is read).
 * Returns the page's count or negative. */
int store_ti_page_each(struct store *st, int64_t run_pk, int offset, int limit, int *total,
		       void (*fn)(const struct ti_row *t, void *ctx), void *ctx);
/* One task instance; map_index -1 for unmapped. -ENOENT when missing. */
int store_ti_get(struct store *st, int64_t run_pk, const char *task_id, int map_index, struct ti_row *out);

/* Sets a task instance's state (mark success/failed/skipped); end_date = when if unset. */
int store_ti_set_state(struct store *st, int64_t ti_pk, const char *state, usec_t when);
/* Sets the note of a task instance / of a run (Airflow's setNote). -ENOENT when missing. */
int store_ti_set_note(struct store *st, int64_t ti_pk, const char *note);
int store_run_set_note(struct store *st, int64_t pk, const char *note);
/* Puts a run back to queued (end_date cleared) and hands it to the daemon (owner NULL). */
int store_run_requeue(struct store *st, int64_t pk);

/* One try of a task instance (history). */
struct try_row {
	int64_t ti_pk;
	int try_number;
	char *state, *executor, *hostname, *external_id, *log_path, *message;
	int pid, exit_code;
	usec_t queued_when, start_date, end_date;
	double duration;
};
void try_row_free(struct try_row *t);
/* Inserts or replaces the try (ti_pk, try_number). */
int store_try_put(struct store *st, const struct try_row *t);
/* Tries of a task instance, oldest first. Returns the count or negative. */
int store_try_list(struct store *st, int64_t ti_pk, struct try_row **out);

/* Outputs ($SLUICE_OUTPUT, sluice's XCom). */
int store_output_put(struct store *st, int64_t ti_pk, const char *key, const char *value, usec_t when);
/* Removes all outputs of a task instance (before a new try). */
int store_output_clear(struct store *st, int64_t ti_pk);
/* Calls fn for each output of ti_pk in key order; stops early when fn returns non-zero. */
int store_output_each(struct store *st, int64_t ti_pk,
		      int (*fn)(void *arg, const char *key, const char *value), void *arg);

/* The source of a DAG version (malloc'd) and the file it came from (malloc'd). -ENOENT. */
int store_dag_version_source(struct store *st, const char *dag_id, const char *version,
			     char **source, char **fileloc);
/* Calls fn for every DAG row: id, paused, active. */
int store_dag_each(struct store *st, void (*fn)(void *arg, const char *dag_id, bool paused, bool active),
		   void *arg);
/* Marks the listed DAGs active and every other DAG inactive. */
int store_dags_set_active(struct store *st, const char *const *ids, size_t n);

/* DAG rows as the daemon recorded them (for the API). */
struct dag_row {
	char *dag_id, *fileloc, *version, *description, *schedule, *timezone, *owners, *tags;
	bool is_paused, is_active, has_import_errors;
	int max_active_runs, max_active_tasks;
	usec_t last_parsed_time;
	/* The next scheduled run the scheduler will create (Airflow's next_dagrun: its logical
	 * date, the interval's start) and when (the interval's end); USEC_NONE when none. */
	usec_t next_dagrun, next_interval_start, next_interval_end;
};
void dag_row_free(struct dag_row *d);
/* The record of one DAG; -ENOENT when there is none. */
int store_dag_row(struct store *st, const char *dag_id, struct dag_row *out);
/* Records the next scheduled interval [start, end) of a DAG (USEC_NONE, USEC_NONE: none). */
int store_dag_set_next(struct store *st, const char *dag_id, usec_t start, usec_t end);
/* DAGs by id (only active ones unless all); returns the count or negative. */
int store_dag_rows(struct store *st, bool all, struct dag_row **out);

/* Import errors, for the API. */
struct import_error_row {
	int64_t id;
	char *filename, *message;
	usec_t timestamp;
};
void import_error_row_free(struct import_error_row *e);
/* All import errors by id; returns the count or negative. */
int store_import_error_list(struct store *st, struct import_error_row **out);

/* Slots a pool's task instances hold, by state. */
int store_pool_usage(struct store *st, const char *pool, int *running, int *queued, int *scheduled);

/* Users and API tokens. Roles are "admin", "op", "viewer". */
int store_user_count(struct store *st);
/* Creates or updates (password and role) a user. */
int store_user_put(struct store *st, const char *username, const char *role, const char *password_hash);
/* The password hash (malloc'd) and role (malloc'd) of a user; -ENOENT when unknown. */
int store_user_get(struct store *st, const char *username, char **password_hash, char **role);
/* Stores a token's hash under a unique name; -EEXIST when the name is taken. */
int store_token_add(struct store *st, const char *name, const char *token_hash, const char *role);
/* The role (malloc'd) of the token with this hash; -ENOENT when unknown. */
int store_token_role(struct store *st, const char *token_hash, char **role);
/* Removes a user / a token by name: in effect for the very next request. -ENOENT when none. */
int store_user_delete(struct store *st, const char *username);
int store_token_delete(struct store *st, const char *name);
/* Calls fn for every token (never the token itself: only its name, role and creation time). */
int store_token_each(struct store *st, void (*fn)(void *arg, const char *name, const char *role, usec_t created),
		     void *arg);

/* Pools. */
int store_pool_slots(struct store *st, const char *name, int *slots);
struct pool_row {
	char *name, *description;
	int slots;
};
/* All pools by name; returns the count or negative. */
int store_pool_list(struct store *st, struct pool_row **out);
void pool_row_free(struct pool_row *p);
/* Creates or updates a pool (slots -1 = unlimited). */
int store_pool_set(struct store *st, const char *name, int slots, const char *description);
/* Deletes a pool; -ENOENT when missing, -EPERM for default_pool. */
int store_pool_delete(struct store *st, const char *name);

/* Variables, connections and the audit log (store_admin.c) ------------------------------------ */

struct var_row {
	char *key, *val, *description;
	bool is_encrypted;     /* val is sealed (secrets.h) */
	usec_t updated_at;
};
void var_row_free(struct var_row *v);
/* -ENOENT when missing. */
int store_var_get(struct store *st, const char *key, struct var_row *out);
/* Every variable by key; the count or negative. */
int store_var_list(struct store *st, struct var_row **out);
/* Inserts (create: -EEXIST when it exists) or replaces (create false). */
int store_var_put(struct store *st, const struct var_row *v, bool create);
/* -ENOENT when missing. */
int store_var_delete(struct store *st, const char *key);

struct conn_row {
	char *conn_id, *conn_type, *description, *host, *schema, *login, *password, *extra;
	int port;              /* 0 = none */
	bool is_encrypted, is_extra_encrypted; /* password / extra are sealed (secrets.h) */
	usec_t updated_at;
};
void conn_row_free(struct conn_row *c);
int store_conn_get(struct store *st, const char *conn_id, struct conn_row *out);
int store_conn_list(struct store *st, struct conn_row **out);
int store_conn_put(struct store *st, const struct conn_row *c, bool create);
int store_conn_delete(struct store *st, const char *conn_id);

/* One entry of the audit log (Airflow's EventLog). */
struct log_row {
	int64_t id;
	usec_t dttm;
	char *event, *owner, *dag_id, *task_id, *run_id, *extra;
	int map_index, try_number;   /* -1 / 0 = none */
	usec_t execution_date;
};
void log_row_free(struct log_row *l);
/* Appends an entry (id is set). */
int store_log_add(struct store *st, struct log_row *l);
/* Every entry, oldest first. */
int store_log_list(struct store *st, struct log_row **out);
int store_log_get(struct store *st, int64_t id, struct log_row *out);

struct user_row {
	char *username, *role;
	usec_t created_at, updated_at;
};
void user_row_free(struct user_row *u);
/* Every user by name (never the password hash). */
int store_user_list(struct store *st, struct user_row **out);
/* The name (malloc'd) of the token with this hash; -ENOENT when unknown. */
int store_token_name(struct store *st, const char *token_hash, char **name);

/* Web UI sessions (migrations/0006_sessions.sql). Adds a session of username that lasts until
 * expires, and drops the sessions that have expired by now; -ENOENT when there is no such user. */
int store_session_put(struct store *st, const char *token_hash, const char *username, usec_t now, usec_t expires);
/* The user (malloc'd), role (malloc'd) and expiry of a session that is still good at now: not
 * expired, and its user unchanged since the login. -ENOENT otherwise. */
int store_session_get(struct store *st, const char *token_hash, usec_t now, char **username, char **role,
		      usec_t *expires);
/* Ends a session (logout); 0 also when there was none. */
int store_session_delete(struct store *st, const char *token_hash);

/* Deletes everything of a DAG: its runs (with their instances, tries and outputs), backfills,
 * versions and its record. -ENOENT when there is no record. */
int store_dag_delete(struct store *st, const char *dag_id);

/* Copies the database to dest with SQLite's online backup, while others go on writing: the copy
 * is made as dest.tmp (0600), checked with integrity_check, synced and renamed into place. */
int store_backup(struct store *st, const char *dest, char **err);

/* PRAGMA synchronous of this connection (1 NORMAL, 2 FULL). */
int store_synchronous(struct store *st);

#endif
