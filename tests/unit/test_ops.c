/* Use cases on runs (orchestrator/ops.c): delete a run and its logs, never outside the home;
 * clear and mark on a stored run; a running run is refused outside the daemon. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/ops.h"
#include "orchestrator/runs.h"
#include "fixture.h"

static struct run_row queue(struct fixture *f, const char *run_id)
{
	struct run_request req = {.run_id = run_id, .logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				  .data_interval_end = USEC_NONE};
	struct run_row r = {0};
	char *err = NULL;
	assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), 0);
	return r;
}

static void set_run_state(struct fixture *f, struct run_row *r, const char *state)
{
	free(r->state);
	r->state = xstrdup(state);
	assert_int_equal(store_run_update(f->w, r), 0);
}

static void test_delete_removes_the_run_and_its_logs(void **state)
{
	struct fixture *f = *state;
	struct run_row r = queue(f, "r1");
	char logs[200];
	snprintf(logs, sizeof(logs), "%s/logs/etl/r1/a/-1", f->home);
	assert_int_equal(mkdir_p(logs, 0755), 0);
	char *err = NULL;
	set_run_state(f, &r, "running");
	assert_int_equal(ops_delete_run(f->w, NULL, f->home, "etl", "r1", false, &err), -EBUSY);
	free(err);
	err = NULL;
	set_run_state(f, &r, "success");
	assert_int_equal(ops_delete_run(f->w, NULL, f->home, "etl", "r1", false, &err), 0);
	struct stat st;
	assert_int_not_equal(stat(logs, &st), 0);
	assert_int_equal(fixture_runs(f), 0);
	assert_int_equal(ops_delete_run(f->w, NULL, f->home, "etl", "r1", false, &err), -ENOENT);
	free(err);
	run_row_free(&r);
}

static void test_a_crafted_row_cannot_delete_outside_the_home(void **state)
{
	struct fixture *f = *state;
	/* A run id written into the database by hand, around the checks of runs_queue. */
	struct run_row r = queue(f, "ok");
	free(r.run_id);
	r.run_id = xstrdup("../../../outside");
	r.logical_date += 1000;
	assert_int_equal(store_run_insert(f->w, &r), 0);
	char keep[200];
	snprintf(keep, sizeof(keep), "%s/outside/keep", f->home);
	assert_int_equal(mkdir_p(keep, 0755), 0);
	char *err = NULL;
	assert_int_equal(ops_delete_run(f->w, NULL, f->home, "etl", "../../../outside", false, &err), 0);
	struct stat st;
	assert_int_equal(stat(keep, &st), 0);
	run_row_free(&r);
}

static void test_clear_refuses_a_running_run_without_its_engine(void **state)
{
	struct fixture *f = *state;
	struct run_row r = queue(f, "r2");
	set_run_state(f, &r, "running");
	const char *ids[] = {"a"};
	struct ops_selection sel = {.task_ids = ids, .ntasks = 1, .map_index = -2};
	struct ti_row *rows = NULL;
	char *err = NULL;
	assert_int_equal(ops_clear(f->w, NULL, f->d, &r, &sel, false, &rows, &err), -EBUSY);
	assert_non_null(strstr(err, "is running"));
	free(err);
	err = NULL;
	assert_int_equal(ops_mark(f->w, NULL, f->d, &r, &sel, "success", false, &rows, &err), -EBUSY);
	free(err);
	err = NULL;
	/* An unknown task is the caller's error. */
	set_run_state(f, &r, "failed");
	const char *bad[] = {"nope"};
	sel.task_ids = bad;
	assert_int_equal(ops_clear(f->w, NULL, f->d, &r, &sel, false, &rows, &err), -ENOENT);
	free(err);
	run_row_free(&r);
}

static void insert_ti(struct fixture *f, const struct run_row *r, const char *task, const char *state)
{
	struct ti_row t;
	ti_row_init(&t);
	t.run_pk = r->pk;
	t.dag_id = xstrdup("etl");
	t.run_id = xstrdup(r->run_id);
	t.task_id = xstrdup(task);
	t.state = xstrdup(state);
	t.try_number = 1;
	t.max_tries = 0;
	t.hostname = xstrdup("worker-1");
	t.pid = 1234;
	t.end_date = now_usec();
	assert_int_equal(store_ti_insert(f->w, &t), 0);
	ti_row_free(&t);
}

static void free_rows(struct ti_row *rows, int n)
{
	for (int i = 0; i < n; i++)
		ti_row_free(&rows[i]);
	free(rows);
}

static void test_clear_and_mark_a_stored_run(void **state)
{
	struct fixture *f = *state;
	struct run_row r = queue(f, "r3"), now = {0};
	insert_ti(f, &r, "a", "success");
	insert_ti(f, &r, "b", "failed");
	set_run_state(f, &r, "failed");
	const char *ids[] = {"a"};
	struct ops_selection sel = {.task_ids = ids, .ntasks = 1, .map_index = -2, .downstream = true,
				    .only_failed = true};
	struct ti_row *rows = NULL, t;
	char *err = NULL;
	/* A dry run lists what would be cleared (a is not failed) and changes nothing. */
	assert_int_equal(ops_clear(f->w, NULL, f->d, &r, &sel, true, &rows, &err), 1);
	assert_string_equal(rows[0].task_id, "b");
	free_rows(rows, 1);
	assert_int_equal(store_ti_get(f->w, r.pk, "b", -1, &t), 0);
	assert_string_equal(t.state, "failed");
	ti_row_free(&t);
	/* The clear: the rows as they were come back; the store has them reset, the run queued. */
	assert_int_equal(ops_clear(f->w, NULL, f->d, &r, &sel, false, &rows, &err), 1);
	assert_string_equal(rows[0].state, "failed");
	free_rows(rows, 1);
	assert_int_equal(store_ti_get(f->w, r.pk, "b", -1, &t), 0);
	assert_string_equal(t.state, "none");
	assert_int_equal(t.max_tries, 1); /* try_number + retries: one more try */
	assert_null(t.hostname);          /* the same reset as the engine's (ti_clear_row) */
	assert_int_equal(t.pid, 0);
	assert_true(t.end_date == USEC_NONE);
	ti_row_free(&t);
	assert_int_equal(store_run_get(f->w, "etl", "r3", 0, &now), 0);
	assert_string_equal(now.state, "queued");
	run_row_free(&now);

	/* Marking the last unfinished leaf success: the run's state follows its leaves. */
	set_run_state(f, &r, "failed");
	const char *b[] = {"b"};
	struct ops_selection mark = {.task_ids = b, .ntasks = 1, .map_index = -2};
	assert_int_equal(ops_mark(f->w, NULL, f->d, &r, &mark, "success", false, &rows, &err), 1);
	free_rows(rows, 1);
	assert_int_equal(store_run_get(f->w, "etl", "r3", 0, &now), 0);
	assert_string_equal(now.state, "success");
	run_row_free(&now);
	assert_int_equal(ops_mark(f->w, NULL, f->d, &r, &mark, "running", false, &rows, &err), -EINVAL);
	free(err);
	run_row_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delete_removes_the_run_and_its_logs, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_crafted_row_cannot_delete_outside_the_home, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_clear_refuses_a_running_run_without_its_engine, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_clear_and_mark_a_stored_run, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
