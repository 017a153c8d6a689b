/* The runner (orchestrator/runner.c), what `sluice serve` and `dags test` are built on, with real
 * tries (the local executor and sluice-shim, from SLUICE_SHIM): one run driven in the foreground,
 * a resumed run whose stored rows name a task the DAG no longer has (it becomes removed), and a
 * hand-crafted run id that is never resumed. test_engine.c covers the trigger rules, retries and
 * the rest of recovery in depth. */
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

static void test_one_run_in_the_foreground(void **state)
{
	struct fx *f = *state;
	struct dag *d = load(f, "local d = dag { id = 'fg', params = { p = 'x' } }\n"
				"local a = d:task 'a' { cmd = 'echo n=1 >> $SLUICE_OUTPUT' }\n"
				"local b = d:task 'b' { cmd = 'test {{ outputs.a.n }} = 1 && test {{ params.p }} = y' }\n"
				"d:flow(a >> b)\nreturn d\n");
	struct run_request req = {.logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				  .data_interval_end = USEC_NONE, .conf = "{\"p\": \"y\"}"};
	struct run_row done = {0};
	char *err = NULL;
	assert_int_equal(runner_run_one(&f->run, d, &req, &done, &err), 0);
	assert_string_equal(done.state, "success");
	assert_non_null(strstr(done.owner, "test:"));  /* the run belongs to this process */
	assert_string_equal(done.dag_version, d->version);
	expect_state(f, &done, "b", "success");
	run_row_free(&done);
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
		cmocka_unit_test_setup_teardown(test_one_run_in_the_foreground, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_decisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids_are_not_resumed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
