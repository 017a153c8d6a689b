/* Use cases of backfills (orchestrator/backfill.c): plan (dry run), create with its "one in
 * progress per DAG" check inside the insert's transaction, pause / resume / cancel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/backfill.h"
#include "orchestrator/runs.h"
#include "fixture.h"

static struct backfill_request nov(const char *from, const char *to)
{
	return (struct backfill_request){.from = from, .to = to};
}

static void test_plan_reads_dates_in_the_dag_zone_and_existing_runs(void **state)
{
	struct fixture *f = *state;
	struct backfill_request req = nov("2026-11-02", "2026-11-04");
	struct backfill_row b;
	struct backfill_step *steps = NULL;
	size_t n = 0;
	char *err = NULL;
	assert_int_equal(backfill_plan(f->w, f->d, &req, &b, &steps, &n, &err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(steps[i].action, BF_CREATE);
	assert_string_equal(b.reprocess_behavior, "none");
	assert_int_equal(b.max_active_runs, 10);
	backfill_steps_free(steps, n);
	backfill_row_free(&b);

	/* A finished run at the 3rd: skipped by "none", reprocessed by "completed". */
	struct run_request rq = {.logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				 .data_interval_end = USEC_NONE};
	assert_int_equal(parse_iso8601("2026-11-03", &rq.logical_date), 0);
	struct run_row r = {0};
	assert_int_equal(runs_queue(f->w, f->d, &rq, &r, &err), 0);
	free(r.state);
	r.state = xstrdup("success");
	assert_int_equal(store_run_update(f->w, &r), 0);
	assert_int_equal(backfill_plan(f->w, f->d, &req, &b, &steps, &n, &err), 0);
	assert_int_equal(steps[1].action, BF_SKIP);
	assert_string_equal(steps[1].existing_state, "success");
	backfill_steps_free(steps, n);
	backfill_row_free(&b);
	req.reprocess = "completed";
	assert_int_equal(backfill_plan(f->w, f->d, &req, &b, &steps, &n, &err), 0);
	assert_int_equal(steps[1].action, BF_REPROCESS);
	backfill_steps_free(steps, n);
	backfill_row_free(&b);
	run_row_free(&r);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	struct backfill_row b;
	char *err = NULL;
	struct backfill_request reqs[] = {
		nov("2026-11-04", "2026-11-02"),
		nov("2026-11-02", "yesterday"),
		nov(NULL, "2026-11-02"),
		{.from = "2026-11-02", .to = "2026-11-03", .reprocess = "some"},
		{.from = "2026-11-02", .to = "2026-11-03", .max_active_runs = -1},
		{.from = "2026-11-02", .to = "2026-11-03", .conf = "\"x\""},
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		assert_int_equal(backfill_create(f->w, f->d, &reqs[i], &b, &err), -EINVAL);
		assert_non_null(err);
		free(err);
		err = NULL;
	}
	struct backfill_row *all = NULL;
	assert_int_equal(store_backfill_list(f->w, "etl", false, &all), 0);
	free(all);
}

static void test_one_in_progress_per_dag(void **state)
{
	struct fixture *f = *state;
	struct backfill_request req = nov("2026-11-02", "2026-11-04");
	struct backfill_row b1, b2;
	char *err = NULL;
	assert_int_equal(backfill_create(f->w, f->d, &req, &b1, &err), 0);
	assert_true(b1.id > 0);
	assert_int_equal(backfill_create(f->w, f->d, &req, &b2, &err), -EEXIST);
	assert_non_null(strstr(err, "already has a backfill in progress"));
	free(err);
	err = NULL;

	/* A second connection (another CLI process) sees the same rule: the check runs inside
	 * the insert's BEGIN IMMEDIATE transaction, so it cannot pass on a stale read. */
	struct store *other = NULL;
	assert_int_equal(store_open(f->db, 0, &other, &err), 0);
	assert_int_equal(backfill_create(other, f->d, &req, &b2, &err), -EEXIST);
	free(err);
	err = NULL;

	/* Once cancelled, a new one may start. */
	struct backfill_row c;
	assert_int_equal(backfill_change(other, b1.id, BF_CANCEL, &c, &err), 0);
	assert_true(c.completed_at != USEC_NONE);
	backfill_row_free(&c);
	assert_int_equal(backfill_create(other, f->d, &req, &b2, &err), 0);
	assert_true(b2.id > b1.id);
	store_close(other);
	backfill_row_free(&b1);
	backfill_row_free(&b2);
}

static void test_pause_resume_cancel(void **state)
{
	struct fixture *f = *state;
	struct backfill_request req = nov("2026-11-02", "2026-11-04");
	struct backfill_row b, c;
	char *err = NULL;
	assert_int_equal(backfill_create(f->w, f->d, &req, &b, &err), 0);
	assert_int_equal(backfill_change(f->w, b.id, BF_PAUSE, &c, &err), 0);
	assert_true(c.is_paused);
	backfill_row_free(&c);
	assert_int_equal(backfill_change(f->w, b.id, BF_RESUME, &c, &err), 0);
	assert_false(c.is_paused);
	backfill_row_free(&c);
	assert_int_equal(backfill_change(f->w, b.id, BF_CANCEL, &c, &err), 0);
	backfill_row_free(&c);
	assert_int_equal(backfill_change(f->w, b.id, BF_PAUSE, &c, &err), -EALREADY);
	assert_non_null(strstr(err, "already completed"));
	free(err);
	err = NULL;
	assert_int_equal(backfill_change(f->w, b.id + 100, BF_PAUSE, &c, &err), -ENOENT);
	free(err);
	backfill_row_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan_reads_dates_in_the_dag_zone_and_existing_runs, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_one_in_progress_per_dag, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_cancel, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
