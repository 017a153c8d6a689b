/* The run engine with real tries (the local executor and sluice-shim, from SLUICE_SHIM): every
 * trigger rule decided from real upstream outcomes, retries with exponential backoff, and the
 * recovery decisions of a run resumed from stored rows. Each run is bounded by the runner's own
 * loop; the tasks are `true`, `false`, `exit 99` and a counter file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/dag_lua.h"
#include "orchestrator/runner.h"
#include "orchestrator/runs.h"

struct fx {
	char home[64];
	struct runner run;
	struct dag_load ld;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *err = NULL;
	const char *shim = getenv("SLUICE_SHIM");
	snprintf(f->home, sizeof(f->home), "/tmp/sluice-engine-XXXXXX");
	if (!shim || !mkdtemp(f->home))
		return -1;
	struct runner_opts o = {.home = f->home, .shim_path = shim, .parallelism = 4, .kill_grace = USEC_PER_SEC};
	if (runner_open(&f->run, &o, &err) < 0) {
		fprintf(stderr, "runner_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	runner_close(&f->run);
	dag_load_clear(&f->ld);
	remove_tree("/tmp", f->home);
	free(f);
	return 0;
}

static struct dag *load(struct fx *f, const char *src)
{
	dag_load_clear(&f->ld);
	if (dag_lua_load("/dags/t.lua", "t.lua", src, strlen(src), NULL, NULL, &f->ld) < 0)
		fail_msg("%s", f->ld.error);
	assert_int_equal(store_dag_sync(f->run.st, f->ld.dags[0], src, now_usec()), 0);
	return f->ld.dags[0];
}

/* Runs one run of d to its end; returns its final row (caller frees). */
static struct run_row run_once(struct fx *f, struct dag *d)
{
	struct run_request req = {.logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				  .data_interval_end = USEC_NONE};
	struct run_row done = {0};
	char *err = NULL;
	if (runner_run_one(&f->run, d, &req, &done, &err) < 0)
		fail_msg("runner_run_one: %s", err);
	return done;
}

static struct ti_row get_ti(struct fx *f, const struct run_row *r, const char *task)
{
	struct ti_row t;
	if (store_ti_get(f->run.st, r->pk, task, -1, &t) < 0)
		fail_msg("no task instance %s", task);
	return t;
}

static void expect_state(struct fx *f, const struct run_row *r, const char *task, const char *want)
{
	struct ti_row t = get_ti(f, r, task);
	if (strcmp(t.state, want))
		fail_msg("%s: %s, wanted %s", task, t.state, want);
	ti_row_free(&t);
}

/* Each rule below one or two upstream outcomes, so that both of its decisions show. */
static const char rules_src[] =
	"local d = dag { id = 'rules' }\n"
	"local ok = d:task 'ok' { cmd = 'true' }\n"
	"local bad = d:task 'bad' { cmd = 'false' }\n"
	"local skip = d:task 'skip' { cmd = 'exit 99' }\n"
	"local function t(id, rule, ups) d:task(id) { cmd = 'true', trigger_rule = rule, after = ups } end\n"
	"t('all_success_run', 'all_success', { ok })\n"
	"t('all_success_no', 'all_success', { ok, bad })\n"
	"t('all_failed_run', 'all_failed', { bad })\n"
	"t('all_failed_no', 'all_failed', { ok, bad })\n"
	"t('all_done_run', 'all_done', { ok, bad, skip })\n"
	"t('all_skipped_run', 'all_skipped', { skip })\n"
	"t('all_skipped_no', 'all_skipped', { ok, skip })\n"
	"t('one_success_run', 'one_success', { ok, bad })\n"
	"t('one_success_no', 'one_success', { bad })\n"
	"t('one_failed_run', 'one_failed', { ok, bad })\n"
	"t('one_failed_no', 'one_failed', { ok })\n"
	"t('one_done_run', 'one_done', { bad, skip })\n"
	"t('one_done_no', 'one_done', { skip })\n"
	"t('none_failed_run', 'none_failed', { ok, skip })\n"
	"t('none_failed_no', 'none_failed', { ok, bad })\n"
	"t('nfmos_run', 'none_failed_min_one_success', { ok, skip })\n"
	"t('nfmos_no', 'none_failed_min_one_success', { skip })\n"
	"t('none_skipped_run', 'none_skipped', { ok, bad })\n"
	"t('none_skipped_no', 'none_skipped', { ok, skip })\n"
	"t('always_run', 'always', { bad, skip })\n"
	"return d\n";

static void test_every_trigger_rule(void **state)
{
	struct fx *f = *state;
	struct run_row r = run_once(f, load(f, rules_src));
	static const char *const want[][2] = {
		{"ok", "success"}, {"bad", "failed"}, {"skip", "skipped"},
		{"all_success_run", "success"}, {"all_success_no", "upstream_failed"},
		{"all_failed_run", "success"}, {"all_failed_no", "skipped"},
		{"all_done_run", "success"},
		{"all_skipped_run", "success"}, {"all_skipped_no", "skipped"},
		{"one_success_run", "success"}, {"one_success_no", "upstream_failed"},
		{"one_failed_run", "success"}, {"one_failed_no", "skipped"},
		{"one_done_run", "success"}, {"one_done_no", "skipped"},
		{"none_failed_run", "success"}, {"none_failed_no", "upstream_failed"},
		{"nfmos_run", "success"}, {"nfmos_no", "skipped"},
		{"none_skipped_run", "success"}, {"none_skipped_no", "skipped"},
		{"always_run", "success"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		expect_state(f, &r, want[i][0], want[i][1]);
	/* Leaves decide the run: all_success_no (upstream_failed) is one. */
	assert_string_equal(r.state, "failed");
	run_row_free(&r);
}

static double secs(usec_t t) { return (double)t / USEC_PER_SEC; }

static void test_retries_with_backoff(void **state)
{
	struct fx *f = *state;
	char src[1024];
	/* Fails twice, then succeeds; 100 ms, then 200 ms (exponential) between the tries. */
	snprintf(src, sizeof(src),
		 "local d = dag { id = 'retry' }\n"
		 "d:task 'flaky' { cmd = 'n=$(cat %s/n 2>/dev/null || echo 0); echo $((n+1)) > %s/n; test $n -ge 2',\n"
		 "  retries = 3, retry_delay = '100ms', retry_exponential_backoff = true }\n"
		 "d:task 'hopeless' { cmd = 'false', retries = 1, retry_delay = '10ms' }\n"
		 "return d\n",
		 f->home, f->home);
	struct run_row r = run_once(f, load(f, src));
	struct ti_row t = get_ti(f, &r, "flaky");
	assert_string_equal(t.state, "success");
	assert_int_equal(t.try_number, 3);
	assert_int_equal(t.max_tries, 3);
	struct try_row *tries = NULL;
	int n = store_try_list(f->run.st, t.pk, &tries);
	assert_int_equal(n, 3);
	assert_string_equal(tries[0].state, "up_for_retry");
	assert_string_equal(tries[1].state, "up_for_retry");
	assert_string_equal(tries[2].state, "success");
	double gap1 = secs(tries[1].start_date - tries[0].end_date), gap2 = secs(tries[2].start_date - tries[1].end_date);
	if (gap1 < 0.1 || gap2 < 0.2)
		fail_msg("retry delays %.3fs and %.3fs; wanted at least 0.1s and 0.2s", gap1, gap2);
	for (int i = 0; i < n; i++)
		try_row_free(&tries[i]);
	free(tries);
	ti_row_free(&t);
	t = get_ti(f, &r, "hopeless");
	assert_string_equal(t.state, "failed");
	assert_int_equal(t.try_number, 2); /* one try and its one retry */
	ti_row_free(&t);
	assert_string_equal(r.state, "failed");
	run_row_free(&r);
}

static struct ti_row stored_ti(const struct run_row *r, const char *task, const char *state, int try_number)
{
	struct ti_row t;
	ti_row_init(&t);
	t.run_pk = r->pk;
	t.dag_id = xstrdup(r->dag_id);
	t.run_id = xstrdup(r->run_id);
	t.task_id = xstrdup(task);
	t.state = xstrdup(state);
	t.try_number = try_number;
	t.max_tries = 1;
	t.operator_name = xstrdup("BashOperator");
	t.executor = xstrdup("local");
	t.pool = xstrdup("default_pool");
	return t;
}

struct wait {
	struct evloop *loop;
	char *state;
};

static void ended(void *arg, struct erun *run)
{
	struct wait *w = arg;
	w->state = xstrdup(erun_row(run)->state);
	evloop_stop(w->loop);
}

/* A run resumed from what the database says (as after a restart): finished instances are left
 * alone, an up_for_retry one whose time has come runs its next try, a queued one whose
 * supervisor never started is started, one never started runs once its upstreams allow, and one
 * whose task is not in the DAG becomes removed (TI_REMOVED, as in Airflow). */
static void test_recovery_decisions(void **state)
{
	struct fx *f = *state;
	struct dag *d = load(f, "local d = dag { id = 'resume' }\n"
				"local a = d:task 'a' { cmd = 'exit 3' }\n" /* would fail if it ran again */
				"local b = d:task 'b' { cmd = 'true', retries = 1 }\n"
				"local q = d:task 'q' { cmd = 'true' }\n"
				"local z = d:task 'z' { cmd = 'true' }\n"
				"d:flow({ a, b, q } >> z)\nreturn d\n");
	struct run_request req = {.logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				  .data_interval_end = USEC_NONE};
	struct run_row r = {0}, now = {0};
	char *err = NULL;
	assert_int_equal(runs_queue(f->run.st, d, &req, &r, &err), 0);
	free(r.state);
	r.state = xstrdup("running");
	assert_int_equal(store_run_update(f->run.st, &r), 0);
	/* "gone": an instance of a task that is not in the DAG the run resumes with. */
	struct ti_row rows[5] = {stored_ti(&r, "a", "success", 1), stored_ti(&r, "b", "up_for_retry", 1),
				 stored_ti(&r, "q", "queued", 1), stored_ti(&r, "z", "none", 0),
				 stored_ti(&r, "gone", "failed", 1)};
	rows[1].max_tries = 2;
	rows[1].next_retry_at = now_usec() - USEC_PER_SEC;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(store_ti_insert(f->run.st, &rows[i]), 0);
		ti_row_free(&rows[i]);
	}
	struct wait w = {f->run.loop, NULL};
	engine_on_run_done(f->run.eng, ended, &w);
	assert_int_equal(engine_start_run(f->run.eng, d, &r, NULL, &err), 0);
	assert_int_equal(evloop_run(f->run.loop), 0);
	assert_non_null(w.state);
	assert_string_equal(w.state, "success");
	struct ti_row t = get_ti(f, &r, "a");
	assert_int_equal(t.try_number, 1); /* not run again */
	ti_row_free(&t);
	t = get_ti(f, &r, "b");
	assert_string_equal(t.state, "success");
	assert_int_equal(t.try_number, 2);
	ti_row_free(&t);
	t = get_ti(f, &r, "q");
	assert_string_equal(t.state, "success");
	assert_int_equal(t.try_number, 1);
	ti_row_free(&t);
	expect_state(f, &r, "z", "success");
	expect_state(f, &r, "gone", "removed"); /* and its failure does not fail the run */
	char *log = runs_log_path(f->home, "resume", r.run_id, "a", -1, 1, "log");
	struct stat sb;
	assert_int_not_equal(stat(log, &sb), 0); /* a's try never ran here */
	free(log);
	assert_int_equal(store_run_get(f->run.st, "resume", r.run_id, 0, &now), 0);
	assert_string_equal(now.state, "success");
	engine_on_run_done(f->run.eng, NULL, NULL);
	free(w.state);
	run_row_free(&now);
	run_row_free(&r);
}

/* A row crafted around runs_queue() with a run id that leaves the home is not started. */
static void test_bad_ids_are_not_resumed(void **state)
{
	struct fx *f = *state;
	struct dag *d = load(f, "local d = dag { id = 'evil' }\nd:task 'a' { cmd = 'true' }\nreturn d\n");
	struct run_row r = {0};
	r.dag_id = xstrdup("evil");
	r.run_id = xstrdup("../../../x");
	r.run_type = xstrdup("manual");
	r.state = xstrdup("queued");
	r.conf = xstrdup("{}");
	r.logical_date = now_usec();
	r.queued_at = r.start_date = r.end_date = r.data_interval_start = r.data_interval_end = USEC_NONE;
	assert_int_equal(store_run_insert(f->run.st, &r), 0);
	char *err = NULL;
	assert_int_equal(engine_start_run(f->run.eng, d, &r, NULL, &err), -EINVAL);
	assert_non_null(strstr(err, "not a valid name"));
	free(err);
	run_row_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_trigger_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_with_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_decisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids_are_not_resumed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
