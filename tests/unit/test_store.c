/* The store: migrations, schema level checks, rows round-trip, cascades. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "orchestrator/embedded.h"
#include "orchestrator/store.h"

static char dir[64], path[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sluice-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sluice.db", dir);
	(void)state;
	return 0;
}

static int teardown(void **state)
{
	remove_tree("/", dir);
	(void)state;
	return 0;
}

static struct store *open_ok(int flags)
{
	struct store *st = NULL;
	char *err = NULL;
	int rc = store_open(path, flags, &st, &err);
	if (rc)
		print_error("store_open: %s\n", err);
	assert_int_equal(rc, 0);
	return st;
}

static void set_user_version(int v)
{
	sqlite3 *db;
	char sql[64];
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_migrate_and_levels(void **state)
{
	struct store *st = open_ok(0);
	assert_true(store_schema_target() >= 1);
	assert_int_equal(store_schema_level(st), store_schema_target());
	int slots = 0;
	assert_int_equal(store_pool_slots(st, "default_pool", &slots), 0);
	assert_int_equal(slots, 128);
	struct strbuf report = {0};
	assert_int_equal(store_integrity(st, &report), 0);
	sb_free(&report);
	store_close(st);

	/* Re-opening applies nothing and keeps the level. */
	st = open_ok(0);
	int from, to;
	char *err = NULL;
	assert_int_equal(store_migrate(st, &from, &to, &err), 0);
	assert_int_equal(from, to);
	store_close(st);

	/* A database from a newer sluice is refused with a clear message. */
	set_user_version(store_schema_target() + 5);
	struct store *bad = NULL;
	assert_int_equal(store_open(path, 0, &bad, &err), -EPROTO);
	assert_null(bad);
	assert_non_null(strstr(err, "newer than this sluice"));
	free(err);
	set_user_version(store_schema_target());
	(void)state;
}

static void test_older_readonly_refused(void **state)
{
	struct store *st = open_ok(0);
	store_close(st);
	set_user_version(0);
	char *err = NULL;
	struct store *ro = NULL;
	assert_int_equal(store_open(path, STORE_READONLY, &ro, &err), -EPROTO);
	assert_non_null(strstr(err, "sluice db migrate"));
	free(err);
	(void)state;
}

static struct run_row mk_run(const char *run_id, usec_t ld)
{
	struct run_row r = {0};
	r.dag_id = xstrdup("d");
	r.run_id = xstrdup(run_id);
	r.run_type = xstrdup("manual");
	r.state = xstrdup("running");
	r.logical_date = ld;
	r.data_interval_start = r.data_interval_end = ld;
	r.queued_at = r.start_date = ld;
	r.end_date = USEC_NONE;
	r.conf = xstrdup("{\"a\":1}");
	return r;
}

static int collect(void *arg, const char *k, const char *v)
{
	struct strbuf *sb = arg;
	sb_printf(sb, "%s=%s;", k, v);
	return 0;
}

static void test_rows(void **state)
{
	struct store *st = open_ok(0);
	struct run_row r = mk_run("manual__1", 1000);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_run_insert(st, &r), 0);
	assert_true(r.pk > 0);
	struct run_row dup = mk_run("manual__1", 2000), dup2 = mk_run("manual__2", 1000);
	assert_int_equal(store_run_insert(st, &dup), -EEXIST);
	assert_int_equal(store_run_insert(st, &dup2), -EEXIST);
	run_row_free(&dup);
	run_row_free(&dup2);

	struct ti_row t;
	ti_row_init(&t);
	t.run_pk = r.pk;
	t.dag_id = xstrdup("d");
	t.run_id = xstrdup("manual__1");
	t.task_id = xstrdup("a");
	t.state = xstrdup("none");
	t.max_tries = 2;
	assert_int_equal(store_ti_insert(st, &t), 0);
	free(t.state);
	t.state = xstrdup("success");
	t.try_number = 1;
	t.exit_code = 0;
	t.start_date = 5;
	t.end_date = 7;
	t.duration = 2e-6;
	t.pid = 42;
	assert_int_equal(store_ti_update(st, &t), 0);
	struct try_row tr = {.ti_pk = t.pk, .try_number = 1, .state = "success", .exit_code = 0,
			     .start_date = 5, .end_date = 7, .duration = 1, .log_path = "/x/1.log"};
	tr.queued_when = USEC_NONE;
	assert_int_equal(store_try_put(st, &tr), 0);
	assert_int_equal(store_output_put(st, t.pk, "rows", "42", 9), 0);
	assert_int_equal(store_output_put(st, t.pk, "file", "/a b", 9), 0);
	assert_int_equal(store_commit(st), 0);

	struct ti_row got;
	assert_int_equal(store_ti_get(st, r.pk, "a", -1, &got), 0);
	assert_string_equal(got.state, "success");
	assert_int_equal(got.try_number, 1);
	assert_int_equal(got.max_tries, 2);
	assert_int_equal(got.exit_code, 0);
	assert_int_equal(got.pid, 42);
	assert_int_equal(got.start_date, 5);
	assert_int_equal(got.queued_when, USEC_NONE);
	ti_row_free(&got);
	assert_int_equal(store_ti_get(st, r.pk, "zz", -1, &got), -ENOENT);

	struct try_row *tries;
	assert_int_equal(store_try_list(st, t.pk, &tries), 1);
	assert_string_equal(tries[0].log_path, "/x/1.log");
	try_row_free(&tries[0]);
	free(tries);

	struct strbuf sb = {0};
	assert_int_equal(store_output_each(st, t.pk, collect, &sb), 0);
	assert_string_equal(sb_str(&sb), "file=/a b;rows=42;");
	sb_free(&sb);

	struct run_row *runs;
	assert_int_equal(store_run_list(st, "d", &runs), 1);
	assert_string_equal(runs[0].conf, "{\"a\":1}");
	assert_int_equal(runs[0].end_date, USEC_NONE);
	run_row_free(&runs[0]);
	free(runs);

	/* Deleting a run removes its task instances, tries and outputs. */
	assert_int_equal(store_run_delete(st, r.pk), 0);
	assert_int_equal(store_ti_get(st, r.pk, "a", -1, &got), -ENOENT);
	assert_int_equal(store_try_list(st, t.pk, &tries), 0);
	free(tries);
	struct strbuf sb2 = {0};
	store_output_each(st, t.pk, collect, &sb2);
	assert_int_equal(sb2.len, 0);
	sb_free(&sb2);
	assert_int_equal(store_run_delete(st, r.pk), -ENOENT);
	ti_row_free(&t);
	run_row_free(&r);
	store_close(st);
	(void)state;
}

static void test_readers_while_writing(void **state)
{
	/* A reader connection sees committed rows while the writer holds an open transaction. */
	struct store *w = open_ok(0), *r = open_ok(STORE_READONLY);
	struct run_row a = mk_run("manual__a", 1), b = mk_run("manual__b", 2);
	store_begin(w);
	store_run_insert(w, &a);
	store_commit(w);
	store_begin(w);
	store_run_insert(w, &b);
	struct run_row *runs;
	int n = store_run_list(r, "d", &runs);
	assert_int_equal(n, 1);
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	store_commit(w);
	n = store_run_list(r, "d", &runs);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++)
		run_row_free(&runs[i]);
	free(runs);
	run_row_free(&a);
	run_row_free(&b);
	store_close(r);
	store_close(w);
	(void)state;
}

/* A database written by the first release is upgraded in place, keeping its rows. */
static void test_upgrade_from_level_1(void **state)
{
	sqlite3 *db;
	const struct embedded_file *m1 = embedded_find(orchestrator_files, "0001_init.sql");
	assert_non_null(m1);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, m1->data, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1; INSERT INTO dag_run (dag_id, run_id, run_type, "
				      "logical_date, state) VALUES ('old', 'manual__x', 'manual', 5, 'success')",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct store *st = open_ok(0);
	assert_int_equal(store_schema_level(st), store_schema_target());
	struct run_row r = {0};
	assert_int_equal(store_run_get(st, "old", "manual__x", 0, &r), 0);
	assert_string_equal(r.state, "success");
	assert_null(r.owner);
	assert_int_equal(r.backfill_id, 0);
	run_row_free(&r);
	struct backfill_row *bfs;
	assert_int_equal(store_backfill_list(st, NULL, false, &bfs), 0);
	free(bfs);
	struct strbuf report = {0};
	assert_int_equal(store_integrity(st, &report), 0);
	sb_free(&report);
	store_close(st);
	(void)state;
}

/* core.db_synchronous: NORMAL unless FULL is asked for. */
static void test_synchronous_levels(void **state)
{
	for (int full = 0; full < 2; full++) {
		struct store *st = open_ok(full ? STORE_SYNC_FULL : 0);
		assert_int_equal(store_synchronous(st), full ? 2 : 1); /* SQLite's FULL and NORMAL */
		store_close(st);
	}
	(void)state;
}

/* An upgrade from every earlier schema level keeps what the database held: a run, its task
 * instances and a pool written at level L read back at the latest level, with the columns later
 * migrations added filled in (updated_at from the row's own times). */
static void test_upgrade_from_every_level(void **state)
{
	for (int level = 1; level < store_schema_target(); level++) {
		unlink(path);
		struct store *st = NULL;
		char *err = NULL;
		int from, to;
		assert_int_equal(store_open(path, STORE_NO_MIGRATE, &st, &err), 0);
		assert_int_equal(store_migrate_upto(st, level, &from, &to, &err), 0);
		assert_int_equal(store_schema_level(st), level);
		store_close(st);
		sqlite3 *db;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		const char *sql =
			"INSERT INTO dag (dag_id, fileloc, description) VALUES ('old', '/dags/old.lua', 'from before');"
			"INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, state, start_date, end_date, note) "
			"VALUES ('old', 'manual__x', 'manual', 5, 'success', 10, 20, 'kept');"
			"INSERT INTO task_instance (run_pk, dag_id, run_id, task_id, state, try_number, start_date, end_date) "
			"VALUES (last_insert_rowid(), 'old', 'manual__x', 'a', 'success', 1, 11, 19);"
			"INSERT OR REPLACE INTO pool (name, slots) VALUES ('p', 3);";
		char *msg = NULL;
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("level %d: %s", level, msg);
		/* From level 5 on, the daemon writes updated_at itself. */
		if (level >= 5 && sqlite3_exec(db, "UPDATE dag_run SET updated_at = 20; UPDATE task_instance SET updated_at = 19",
					       NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("level %d: %s", level, msg);
		sqlite3_close(db);
		st = open_ok(0);
		assert_int_equal(store_schema_level(st), store_schema_target());
		struct run_row r = {0};
		assert_int_equal(store_run_get(st, "old", "manual__x", 0, &r), 0);
		assert_string_equal(r.state, "success");
		assert_string_equal(r.note, "kept");
		assert_true(r.updated_at == 20);
		struct ti_row ti;
		assert_int_equal(store_ti_get(st, r.pk, "a", -1, &ti), 0);
		assert_string_equal(ti.state, "success");
		assert_true(ti.updated_at == 19);
		ti_row_free(&ti);
		run_row_free(&r);
		struct pool_row *pools = NULL;
		int n = store_pool_list(st, &pools);
		bool found = false;
		for (int i = 0; i < n; i++) {
			found = found || (!strcmp(pools[i].name, "p") && pools[i].slots == 3);
			pool_row_free(&pools[i]);
		}
		free(pools);
		assert_true(found);
		struct strbuf report = {0};
		if (store_integrity(st, &report) != 0)
			fail_msg("level %d: %s", level, sb_str(&report));
		sb_free(&report);
		store_close(st);
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_and_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_readonly_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_while_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_level_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_every_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_synchronous_levels, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
