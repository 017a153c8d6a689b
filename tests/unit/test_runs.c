/* Use case "queue a run" (orchestrator/runs.c): the one place that builds a run row and checks a
 * run_id, for the CLI, the API and the scheduler alike. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/runs.h"
#include "fixture.h"

static struct run_request manual(const char *run_id)
{
	return (struct run_request){.run_id = run_id, .logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				    .data_interval_end = USEC_NONE};
}

static void test_bad_run_ids_are_refused_and_write_nothing(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {"../../../x", "..", ".", "a/b", "a b", "x\ny", "r%2F", "é"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct run_request req = manual(bad[i]);
		struct run_row r = {0};
		char *err = NULL;
		assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), -EINVAL);
		assert_non_null(strstr(err, "run_id"));
		free(err);
	}
	char *big = xmalloc(100001);
	memset(big, 'r', 100000);
	big[100000] = '\0';
	struct run_request req = manual(big);
	struct run_row r = {0};
	char *err = NULL;
	assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), -EINVAL);
	assert_non_null(strstr(err, "at most 250"));
	free(err);
	free(big);
	assert_int_equal(fixture_runs(f), 0);
}

static void test_conf_and_run_type_are_checked(void **state)
{
	struct fixture *f = *state;
	struct run_request req = manual(NULL);
	struct run_row r = {0};
	char *err = NULL;
	req.conf = "[1, 2]";
	assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), -EINVAL);
	assert_non_null(strstr(err, "JSON object"));
	free(err);
	err = NULL;
	req.conf = NULL;
	req.run_type = "sometimes";
	assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), -EINVAL);
	free(err);
	assert_int_equal(fixture_runs(f), 0);
}

static void test_a_manual_run_gets_airflow_defaults(void **state)
{
	struct fixture *f = *state;
	struct run_request req = manual(NULL);
	struct run_row r = {0}, stored = {0};
	char *err = NULL;
	usec_t ld;
	assert_int_equal(parse_iso8601("2026-11-05T10:30:00Z", &ld), 0);
	req.logical_date = ld;
	req.conf = "{\"region\": \"us\"}";
	assert_int_equal(runs_queue(f->w, f->d, &req, &r, &err), 0);
	assert_string_equal(r.run_id, "manual__2026-11-05T10:30:00+00:00");
	assert_string_equal(r.run_type, "manual");
	assert_string_equal(r.state, "queued");
	assert_true(r.external_trigger);
	/* @daily: the last complete interval that ends at or before the logical date. */
	char s[ISO_BUFSZ], e[ISO_BUFSZ];
	format_iso8601(r.data_interval_start, s, sizeof(s));
	format_iso8601(r.data_interval_end, e, sizeof(e));
	assert_string_equal(s, "2026-11-04T00:00:00+00:00");
	assert_string_equal(e, "2026-11-05T00:00:00+00:00");
	assert_int_equal(store_run_get(f->w, "etl", r.run_id, 0, &stored), 0);
	assert_string_equal(stored.conf, "{\"region\":\"us\"}");
	run_row_free(&r);
	run_row_free(&stored);
}

static void test_clashes(void **state)
{
	struct fixture *f = *state;
	struct run_row r1 = {0}, r2 = {0};
	char *err = NULL;
	struct run_request req = manual("mine");
	assert_int_equal(runs_queue(f->w, f->d, &req, &r1, &err), 0);
	/* The same run_id again. */
	req.logical_date = r1.logical_date + 5;
	assert_int_equal(runs_queue(f->w, f->d, &req, &r2, &err), -EEXIST);
	assert_non_null(strstr(err, "already exists"));
	free(err);
	err = NULL;
	/* The same explicit logical date under another id: refused, not moved. */
	req = manual("other");
	req.logical_date = r1.logical_date;
	assert_int_equal(runs_queue(f->w, f->d, &req, &r2, &err), -EEXIST);
	free(err);
	err = NULL;
	/* Defaulted dates never clash: a burst of triggers all land. */
	for (int i = 0; i < 20; i++) {
		struct run_request now = manual(NULL);
		assert_int_equal(runs_queue(f->w, f->d, &now, &r2, &err), 0);
		run_row_free(&r2);
	}
	assert_int_equal(fixture_runs(f), 21);
	run_row_free(&r1);
}

static void test_log_folders_stay_in_the_home(void **state)
{
	struct fixture *f = *state;
	char *dir = runs_log_dir(f->home, "etl", "manual__x");
	char want[256];
	snprintf(want, sizeof(want), "%s/logs/etl/manual__x", f->home);
	assert_string_equal(dir, want);
	free(dir);
	assert_null(runs_log_dir(f->home, "etl", "../../../x"));
	assert_null(runs_log_dir(f->home, "..", "x"));

	/* Rows crafted by hand in the database cannot make a removal leave $home/logs. */
	char outside[160], keep[200];
	snprintf(outside, sizeof(outside), "%s/outside", f->home);
	snprintf(keep, sizeof(keep), "%s/keep", outside);
	assert_int_equal(mkdir_p(keep, 0755), 0);
	assert_int_equal(runs_remove_logs(f->home, "etl", "../../outside"), -EPERM);
	assert_int_equal(runs_remove_logs(f->home, "..", "outside"), -EPERM);
	assert_int_equal(runs_remove_logs(f->home, "etl", "/../../outside"), -EPERM);
	struct stat st;
	assert_int_equal(stat(keep, &st), 0);
	/* A real run's folder goes. */
	char mine[200];
	snprintf(mine, sizeof(mine), "%s/logs/etl/r1/a/-1", f->home);
	assert_int_equal(mkdir_p(mine, 0755), 0);
	assert_int_equal(runs_remove_logs(f->home, "etl", "r1"), 0);
	assert_int_not_equal(stat(mine, &st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_run_ids_are_refused_and_write_nothing, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_conf_and_run_type_are_checked, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_manual_run_gets_airflow_defaults, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_clashes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_log_folders_stay_in_the_home, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
