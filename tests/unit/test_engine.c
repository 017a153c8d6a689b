/* The run engine (orchestrator/engine.h) driven for real: a store on a temporary SQLite file, an
 * event loop, DAGs loaded from Lua, and tries that run through the local executor under the real
 * sluice-shim ($SLUICE_SHIM). Pinned here: the readiness decision of every trigger rule (and that
 * it is taken as early as the upstream states allow, or not before they are all done), retries
 * and the retry-delay arithmetic, and what a run resumed from stored rows does with each state.
 *
 * Every wait on the loop is bounded by a guard timer; SLUICE_STRICT_STATES (set by the test
 * environment) turns a transition the state table refuses into an abort. */
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/evloop.h"
#include "orchestrator/dag_lua.h"
#include "orchestrator/engine.h"
#include "orchestrator/runs.h"
#include "orchestrator/store.h"

extern char **environ;

#define MSEC 1000LL
#define RUN_LIMIT (60 * USEC_PER_SEC)

struct fx {
	char home[64];
	const char *shim;
	struct store *st;
	struct evloop *loop;
	struct engine *eng;
	struct dag_load ld;
	struct run_row final;     /* the run as the engine ended it */
	bool done, timed_out;
};

static void on_done(void *arg, struct erun *run)
{
	struct fx *f = arg;
	run_row_free(&f->final);
	run_row_copy(&f->final, erun_row(run));
	f->done = true;
	evloop_stop(f->loop);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char db[128], *err = NULL;
	f->shim = getenv("SLUICE_SHIM");
	snprintf(f->home, sizeof(f->home), "/tmp/sluice-engine-XXXXXX");
	if (!f->shim || f->shim[0] != '/' || !mkdtemp(f->home)) {
		fprintf(stderr, "SLUICE_SHIM must name the sluice-shim binary, and /tmp must be writable\n");
		free(f);
		return -1;
	}
	snprintf(db, sizeof(db), "%s/sluice.db", f->home);
	struct engine_opts o = {.home = f->home, .shim_path = f->shim, .parallelism = 16,
				.kill_grace = 200 * MSEC};
	if (store_open(db, 0, &f->st, &err) < 0 || !(f->loop = evloop_new()) ||
	    !(f->eng = engine_new(f->st, f->loop, &o, &err))) {
		fprintf(stderr, "setup: %s\n", err ? err : "cannot create the loop");
		return -1;
	}
	engine_on_run_done(f->eng, on_done, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	engine_free(f->eng);
	evloop_free(f->loop);
	store_close(f->st);
	dag_load_clear(&f->ld);
	run_row_free(&f->final);
	remove_tree("/tmp", f->home);
	free(f);
	return 0;
}

/* Helpers ------------------------------------------------------------------------------------- */

/* Loads the one DAG of a Lua source and records it in the store, as the daemon does. */
static struct dag *load_dag(struct fx *f, const char *src)
{
	if (dag_lua_load("/dags/t.lua", "t.lua", src, strlen(src), NULL, NULL, &f->ld) < 0)
		fail_msg("the test DAG does not load: %s", f->ld.error);
	assert_int_equal(f->ld.ndags, 1);
	assert_int_equal(store_dag_sync(f->st, f->ld.dags[0], src, now_usec()), 0);
	return f->ld.dags[0];
}

static void guard_cb(struct evloop *loop, void *arg)
{
	struct fx *f = arg;
	f->timed_out = true;
	evloop_stop(loop);
}

/* Runs the loop until the engine reports the run done, at most `limit`. */
static void wait_done(struct fx *f, usec_t limit)
{
	struct ev_timer *guard = evloop_timer_in(f->loop, limit, guard_cb, f);
	while (!f->done && !f->timed_out)
		assert_int_equal(evloop_run(f->loop), 0);
	if (f->timed_out)
		fail_msg("the run did not end within %lld s", (long long)(limit / USEC_PER_SEC));
	evloop_timer_cancel(f->loop, guard);
}

static struct run_request manual(void)
{
	return (struct run_request){.logical_date = USEC_NONE, .data_interval_start = USEC_NONE,
				    .data_interval_end = USEC_NONE};
}

/* Creates a manual run of d through the engine and drives it to its end. */
static void run_to_end(struct fx *f, struct dag *d)
{
	struct run_request req = manual();
	char *err = NULL;
	if (engine_create_run(f->eng, d, &req, NULL, &err) < 0)
		fail_msg("engine_create_run: %s", err);
	wait_done(f, RUN_LIMIT);
}

/* The stored task instances of a run. */
struct tis {
	struct ti_row *v;
	int n;
};

static struct tis load_tis(struct fx *f, int64_t run_pk)
{
	struct tis t = {0};
	t.n = store_ti_list(f->st, run_pk, &t.v);
	assert_true(t.n >= 0);
	return t;
}

static const struct ti_row *ti_of(const struct tis *t, const char *task_id)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].task_id, task_id))
			return &t->v[i];
	fail_msg("no task instance of '%s'", task_id);
	return NULL;
}

static void free_tis(struct tis *t)
{
	for (int i = 0; i < t->n; i++)
		ti_row_free(&t->v[i]);
	free(t->v);
}

static void assert_ti(const struct tis *t, const char *task_id, const char *state, int try_number)
{
	const struct ti_row *r = ti_of(t, task_id);
	if (strcmp(r->state, state) || r->try_number != try_number)
		fail_msg("%s: %s after %d tries, expected %s after %d", task_id, r->state, r->try_number, state,
			 try_number);
}

/* The try history of one task instance, oldest first. */
struct tries {
	struct try_row *v;
	int n;
};

static struct tries load_tries(struct fx *f, int64_t ti_pk)
{
	struct tries t = {0};
	t.n = store_try_list(f->st, ti_pk, &t.v);
	assert_true(t.n >= 0);
	return t;
}

static void free_tries(struct tries *t)
{
	for (int i = 0; i < t->n; i++)
		try_row_free(&t->v[i]);
	free(t->v);
}

/* Time between the end of try i (0-based) and the queueing of the next one. */
static usec_t retry_gap(const struct tries *t, int i)
{
	assert_true(i + 1 < t->n);
	return t->v[i + 1].queued_when - t->v[i].end_date;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Trigger rules ------------------------------------------------------------------------------- */

/* Upstream mixes. skip1 runs after bad1 (all_done), so that in "badskip" the failure always
 * arrives first: all_success decides on the first finished upstream that settles it, and with
 * both orders possible the outcome would depend on which process ended first. */
static const char rules_sources[] =
	"local d = dag { id = 'rules', max_active_tasks = 64 }\n"
	"d:task 'ok1' { cmd = '/bin/true' }\n"
	"d:task 'ok2' { cmd = '/bin/true' }\n"
	"d:task 'bad1' { cmd = '/bin/false' }\n"
	"d:task 'bad2' { cmd = '/bin/false' }\n"
	"d:task 'skip1' { cmd = 'exit 99', after = 'bad1', trigger_rule = 'all_done' }\n"
	"d:task 'skip2' { cmd = 'exit 99' }\n"
	"d:task 'uf1' { cmd = '/bin/true', after = 'bad1' }\n";

enum { M_OK, M_OKBAD, M_BAD, M_SKIP, M_OKSKIP, M_BADSKIP, M_UF, M__COUNT };

static const struct {
	const char *name, *after;
} mixes[M__COUNT] = {
	[M_OK] = {"ok", "'ok1', 'ok2'"},
	[M_OKBAD] = {"okbad", "'ok1', 'bad1'"},
	[M_BAD] = {"bad", "'bad1', 'bad2'"},
	[M_SKIP] = {"skip", "'skip1', 'skip2'"},
	[M_OKSKIP] = {"okskip", "'ok1', 'skip1'"},
	[M_BADSKIP] = {"badskip", "'bad1', 'skip1'"},
	[M_UF] = {"uf", "'uf1'"},
};

/* What each rule does with each mix, in the order of mixes[]: R ran (the task, /bin/true,
 * succeeded), S skipped, U upstream_failed. Airflow's semantics; one_done counts success and
 * failed, not upstream_failed. */
static const struct {
	const char *rule;
	char expect[M__COUNT + 1];
} rules[] = {
	{"all_success", "RUUSSUU"},
	{"all_failed", "SSRSSSR"},
	{"all_done", "RRRRRRR"},
	{"all_skipped", "SSSRSSS"},
	{"one_success", "RRUSRUU"},
	{"one_failed", "SRRSSRR"},
	{"one_done", "RRRSRRS"},
	{"none_failed", "RUURRUU"},
	{"none_failed_min_one_success", "RUUSRUU"},
	{"none_skipped", "RRRSSSR"},
	{"always", "RRRRRRR"},
};

#define NRULES (sizeof(rules) / sizeof(rules[0]))

static const char *expected_state(char c)
{
	return c == 'R' ? "success" : c == 'S' ? "skipped" : "upstream_failed";
}

/* Every rule against every mix in one run: a task "<rule>__<mix>" per pair. */
static void test_every_trigger_rule_decides_both_ways(void **state)
{
	struct fx *f = *state;
	struct strbuf src = {0};
	assert_int_equal(NRULES, TR__COUNT);
	sb_puts(&src, rules_sources);
	for (size_t r = 0; r < NRULES; r++)
		for (int m = 0; m < M__COUNT; m++)
			sb_printf(&src, "d:task '%s__%s' { cmd = '/bin/true', after = { %s }, trigger_rule = '%s' }\n",
				  rules[r].rule, mixes[m].name, mixes[m].after, rules[r].rule);
	sb_puts(&src, "return d\n");
	struct dag *d = load_dag(f, src.buf);
	sb_free(&src);
	run_to_end(f, d);
	assert_string_equal(f->final.state, "failed"); /* failed and upstream_failed leaves */

	struct tis t = load_tis(f, f->final.pk);
	assert_int_equal(t.n, 7 + (int)NRULES * M__COUNT);
	assert_ti(&t, "ok1", "success", 1);
	assert_ti(&t, "bad1", "failed", 1);
	assert_ti(&t, "skip1", "skipped", 1);
	assert_ti(&t, "uf1", "upstream_failed", 0); /* decided without a try */
	for (size_t r = 0; r < NRULES; r++) {
		for (int m = 0; m < M__COUNT; m++) {
			char id[96];
			char c = rules[r].expect[m];
			snprintf(id, sizeof(id), "%s__%s", rules[r].rule, mixes[m].name);
			assert_ti(&t, id, expected_state(c), c == 'R' ? 1 : 0);
		}
	}
	free_tis(&t);
}

/* A rule is decided as soon as the finished upstreams settle it, while a slow upstream still
 * runs; a rule that needs every upstream waits for the slow one. */
static void test_rules_decide_as_early_as_the_counts_allow(void **state)
{
	struct fx *f = *state;
	static const char src[] =
		"local d = dag { id = 'early', max_active_tasks = 32 }\n"
		"d:task 'slow' { cmd = 'sleep 1' }\n"
		"d:task 'ok1' { cmd = '/bin/true' }\n"
		"d:task 'bad1' { cmd = '/bin/false' }\n"
		"d:task 'skip1' { cmd = 'exit 99' }\n"
		"d:task 'e_one_success' { cmd = '/bin/true', after = { 'ok1', 'slow' }, trigger_rule = 'one_success' }\n"
		"d:task 'e_one_failed' { cmd = '/bin/true', after = { 'bad1', 'slow' }, trigger_rule = 'one_failed' }\n"
		"d:task 'e_one_done' { cmd = '/bin/true', after = { 'bad1', 'slow' }, trigger_rule = 'one_done' }\n"
		"d:task 'e_all_success' { cmd = '/bin/true', after = { 'bad1', 'slow' } }\n"
		"d:task 'e_none_failed' { cmd = '/bin/true', after = { 'bad1', 'slow' }, trigger_rule = 'none_failed' }\n"
		"d:task 'e_all_failed' { cmd = '/bin/true', after = { 'ok1', 'slow' }, trigger_rule = 'all_failed' }\n"
		"d:task 'e_none_skipped' { cmd = '/bin/true', after = { 'skip1', 'slow' }, trigger_rule = 'none_skipped' }\n"
		"d:task 'e_always' { cmd = '/bin/true', after = 'slow', trigger_rule = 'always' }\n"
		"d:task 'l_all_done' { cmd = '/bin/true', after = { 'ok1', 'slow' }, trigger_rule = 'all_done' }\n"
		"d:task 'l_one_success' { cmd = '/bin/true', after = { 'skip1', 'slow' }, trigger_rule = 'one_success' }\n"
		"d:task 'l_all_success' { cmd = '/bin/true', after = { 'ok1', 'slow' } }\n"
		"return d\n";
	static const struct {
		const char *task, *state;
		bool early;
	} want[] = {
		{"e_one_success", "success", true}, {"e_one_failed", "success", true},
		{"e_one_done", "success", true}, {"e_all_success", "upstream_failed", true},
		{"e_none_failed", "upstream_failed", true}, {"e_all_failed", "skipped", true},
		{"e_none_skipped", "skipped", true}, {"e_always", "success", true},
		{"l_all_done", "success", false}, {"l_one_success", "success", false},
		{"l_all_success", "success", false},
	};
	run_to_end(f, load_dag(f, src));
	struct tis t = load_tis(f, f->final.pk);
	const struct ti_row *slow = ti_of(&t, "slow");
	assert_string_equal(slow->state, "success");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct ti_row *r = ti_of(&t, want[i].task);
		if (strcmp(r->state, want[i].state))
			fail_msg("%s is %s, expected %s", want[i].task, r->state, want[i].state);
		if (want[i].early && r->end_date >= slow->end_date)
			fail_msg("%s was decided only after slow ended", want[i].task);
		if (!want[i].early && r->start_date < slow->end_date)
			fail_msg("%s started before slow ended", want[i].task);
	}
	free_tis(&t);
}

/* Retries --------------------------------------------------------------------------------------- */

/* a == b within a microsecond: the arithmetic is done in doubles and truncated. */
static void assert_near(usec_t a, usec_t b)
{
	if (a < b - 1 || a > b + 1)
		fail_msg("%lld us, expected %lld us", (long long)a, (long long)b);
}

static void test_retry_delay_arithmetic(void **state)
{
	struct task t = {.retry_delay = 10 * USEC_PER_SEC};
	(void)state;
	/* Without backoff: retry_delay after every try, whatever the jitter. */
	assert_int_equal(task_retry_delay(&t, 1, 0.0), 10 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 5, 0.9), 10 * USEC_PER_SEC);
	/* With backoff: retry_delay * 2^(try-1), plus jitter of up to 10%. */
	t.retry_exponential_backoff = true;
	assert_int_equal(task_retry_delay(&t, 1, 0.0), 10 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 2, 0.0), 20 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 3, 0.0), 40 * USEC_PER_SEC);
	assert_near(task_retry_delay(&t, 3, 0.5), 42 * USEC_PER_SEC);
	assert_near(task_retry_delay(&t, 3, 0.999), 43996000);
	assert_int_equal(task_retry_delay(&t, 0, 0.0), 10 * USEC_PER_SEC); /* no negative power */
	/* Capped by max_retry_delay, jitter included. */
	t.max_retry_delay = 30 * USEC_PER_SEC;
	assert_near(task_retry_delay(&t, 2, 0.999), 21998000); /* 20 s + 9.99% */
	assert_int_equal(task_retry_delay(&t, 3, 0.0), 30 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 60, 0.5), 30 * USEC_PER_SEC);
	/* Without max_retry_delay the built-in cap of 24 h holds, even past 2^62. */
	t.max_retry_delay = 0;
	assert_int_equal(task_retry_delay(&t, 14, 0.0), 81920 * USEC_PER_SEC);
	assert_int_equal(task_retry_delay(&t, 15, 0.0), DAG_DEFAULT_MAX_RETRY_DELAY);
	assert_int_equal(task_retry_delay(&t, 1000, 0.9), DAG_DEFAULT_MAX_RETRY_DELAY);
	/* The cap applies without backoff too (sluice's rule; Airflow caps only the backoff). */
	t.retry_exponential_backoff = false;
	t.retry_delay = 2 * DAG_DEFAULT_MAX_RETRY_DELAY;
	assert_int_equal(task_retry_delay(&t, 1, 0.0), DAG_DEFAULT_MAX_RETRY_DELAY);
}

static void test_retries_through_the_engine(void **state)
{
	struct fx *f = *state;
	static const char src[] =
		"local d = dag { id = 'retries' }\n"
		"d:task 'flaky' { cmd = 'test $SLUICE_TRY_NUMBER -ge 3', retries = 3, retry_delay = '0.1s' }\n"
		"d:task 'hopeless' { cmd = 'exit 1', retries = 2, retry_delay = 0.05 }\n"
		"d:task 'fatal' { cmd = 'exit 2', retries = 5, retry_delay = 0.05, no_retry_exit_codes = { 2 } }\n"
		"d:task 'skipper' { cmd = 'exit 99', retries = 3, retry_delay = 0.05 }\n"
		"return d\n";
	run_to_end(f, load_dag(f, src));
	assert_string_equal(f->final.state, "failed");
	struct tis t = load_tis(f, f->final.pk);
	assert_ti(&t, "flaky", "success", 3);
	assert_ti(&t, "hopeless", "failed", 3); /* 1 + retries */
	assert_int_equal(ti_of(&t, "hopeless")->max_tries, 2);
	assert_ti(&t, "fatal", "failed", 1);    /* its exit code is not retried */
	assert_int_equal(ti_of(&t, "fatal")->exit_code, 2);
	assert_ti(&t, "skipper", "skipped", 1); /* a skip is not a failure */

	struct tries h = load_tries(f, ti_of(&t, "flaky")->pk);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.v[0].state, "up_for_retry");
	assert_string_equal(h.v[1].state, "up_for_retry");
	assert_string_equal(h.v[2].state, "success");
	assert_true(retry_gap(&h, 0) >= 100 * MSEC);
	assert_true(retry_gap(&h, 1) >= 100 * MSEC);
	free_tries(&h);
	h = load_tries(f, ti_of(&t, "hopeless")->pk);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.v[2].state, "failed");
	assert_non_null(strstr(h.v[2].message, "exited with code 1"));
	free_tries(&h);
	free_tis(&t);
}

/* Backoff doubles the delay after each try; max_retry_delay caps it. The uncapped delays of
 * "capped" would be 0.1, 0.2, 0.4 and 0.8 s: its last gap shows the cap. */
static void test_backoff_through_the_engine(void **state)
{
	struct fx *f = *state;
	static const char src[] =
		"local d = dag { id = 'backoff' }\n"
		"d:task 'doubling' { cmd = 'test $SLUICE_TRY_NUMBER -ge 3', retries = 2, retry_delay = '0.1s',\n"
		"                    retry_exponential_backoff = true }\n"
		"d:task 'capped' { cmd = 'test $SLUICE_TRY_NUMBER -ge 5', retries = 4, retry_delay = '0.1s',\n"
		"                  retry_exponential_backoff = true, max_retry_delay = '0.15s' }\n"
		"return d\n";
	run_to_end(f, load_dag(f, src));
	assert_string_equal(f->final.state, "success");
	struct tis t = load_tis(f, f->final.pk);
	assert_ti(&t, "doubling", "success", 3);
	assert_ti(&t, "capped", "success", 5);
	struct tries h = load_tries(f, ti_of(&t, "doubling")->pk);
	assert_int_equal(h.n, 3);
	assert_true(retry_gap(&h, 0) >= 100 * MSEC);
	assert_true(retry_gap(&h, 1) >= 200 * MSEC);
	free_tries(&h);
	h = load_tries(f, ti_of(&t, "capped")->pk);
	assert_int_equal(h.n, 5);
	assert_true(retry_gap(&h, 0) >= 100 * MSEC);
	for (int i = 1; i < 4; i++)
		assert_true(retry_gap(&h, i) >= 150 * MSEC);
	if (retry_gap(&h, 3) >= 600 * MSEC)
		fail_msg("the fourth retry waited %lld ms: max_retry_delay did not cap it",
			 (long long)(retry_gap(&h, 3) / MSEC));
	free_tries(&h);
	free_tis(&t);
}

/* Recovery: runs resumed from stored rows ------------------------------------------------------- */

/* Queues a run of d in the store without starting it. */
static struct run_row queue_run(struct fx *f, struct dag *d)
{
	struct run_request req = manual();
	struct run_row r = {0};
	char *err = NULL;
	if (runs_queue(f->st, d, &req, &r, &err) < 0)
		fail_msg("runs_queue: %s", err);
	return r;
}

/* A stored task instance of `task` in run r as an earlier daemon left it; the caller may set
 * more fields before put_ti(). */
static struct ti_row stored_ti(const struct dag *d, const struct run_row *r, const char *task,
			       const char *state, int try_number)
{
	const struct task *t = &d->tasks[dag_task_index(d, task)];
	struct ti_row row;
	ti_row_init(&row);
	row.run_pk = r->pk;
	row.dag_id = xstrdup(r->dag_id);
	row.run_id = xstrdup(r->run_id);
	row.task_id = xstrdup(task);
	row.state = xstrdup(state);
	row.try_number = try_number;
	row.max_tries = t->retries;
	row.operator_name = xstrdup(t->operator_name);
	row.executor = xstrdup(t->executor);
	row.pool = xstrdup(t->pool);
	row.pool_slots = t->pool_slots;
	row.priority_weight = t->effective_weight;
	return row;
}

/* Inserts the row and frees it; returns its primary key. */
static int64_t put_ti(struct fx *f, struct ti_row *row)
{
	assert_int_equal(store_ti_insert(f->st, row), 0);
	int64_t pk = row->pk;
	ti_row_free(row);
	return pk;
}

/* Resumes a stored run as a restarted daemon does, and drives it to its end. */
static void resume(struct fx *f, struct dag *d, const struct run_row *r)
{
	char *err = NULL;
	if (engine_start_run(f->eng, d, r, NULL, &err) < 0)
		fail_msg("engine_start_run: %s", err);
	wait_done(f, RUN_LIMIT);
}

/* Finished instances keep their state, try and outputs; their downstream tasks carry on. */
static void test_recovery_leaves_finished_instances_alone(void **state)
{
	struct fx *f = *state;
	char src[1024];
	snprintf(src, sizeof(src),
		 "local d = dag { id = 'rec_done' }\n"
		 "local a = d:task 'a' { cmd = 'echo ran >> %s/a.ran; echo x=1 >> $SLUICE_OUTPUT' }\n"
		 "local b = d:task 'b' { cmd = \"test '{{ outputs.a.x }}' = 7\" }\n"
		 "local c = d:task 'c' { cmd = 'echo ran >> %s/c.ran' }\n"
		 "local e = d:task 'e' { cmd = '/bin/true' }\n"
		 "local s = d:task 's' { cmd = 'echo ran >> %s/s.ran' }\n"
		 "d:flow(a >> b)\nd:flow(c >> e)\n"
		 "return d\n", f->home, f->home, f->home);
	struct dag *d = load_dag(f, src);
	struct run_row r = queue_run(f, d);
	struct ti_row row = stored_ti(d, &r, "a", "success", 1);
	int64_t a_pk = put_ti(f, &row);
	assert_int_equal(store_output_put(f->st, a_pk, "x", "7", now_usec()), 0);
	row = stored_ti(d, &r, "b", "none", 0);
	put_ti(f, &row);
	row = stored_ti(d, &r, "c", "failed", 1);
	put_ti(f, &row);
	row = stored_ti(d, &r, "e", "none", 0);
	put_ti(f, &row);
	row = stored_ti(d, &r, "s", "skipped", 0);
	put_ti(f, &row);

	resume(f, d, &r);
	assert_string_equal(f->final.state, "failed"); /* e: upstream_failed */
	struct tis t = load_tis(f, r.pk);
	assert_ti(&t, "a", "success", 1);
	assert_ti(&t, "b", "success", 1); /* it read a's stored output */
	assert_ti(&t, "c", "failed", 1);
	assert_ti(&t, "e", "upstream_failed", 0);
	assert_ti(&t, "s", "skipped", 0);
	char p[160];
	snprintf(p, sizeof(p), "%s/a.ran", f->home);
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s/c.ran", f->home);
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s/s.ran", f->home);
	assert_false(exists(p));
	struct tries h = load_tries(f, a_pk);
	assert_int_equal(h.n, 0); /* no try of a was made */
	free_tries(&h);
	free_tis(&t);
	run_row_free(&r);
}

/* Starts a supervisor for try 1 of `task`, as a daemon that was killed had done, at the paths
 * the engine uses; waits until it has claimed the try. Returns its pid; *ext gets the external
 * id ("<pid>:<starttime>", malloc'd). */
static pid_t spawn_supervisor(struct fx *f, const struct run_row *r, const char *task, const char *script,
			      char **ext)
{
	char *log = runs_log_path(f->home, r->dag_id, r->run_id, task, -1, 1, "log");
	char *status = runs_log_path(f->home, r->dag_id, r->run_id, task, -1, 1, "status");
	char *pidf = runs_log_path(f->home, r->dag_id, r->run_id, task, -1, 1, "pid");
	char *dir = xstrdup(log), *text = NULL;
	*strrchr(dir, '/') = '\0';
	assert_int_equal(mkdir_p(dir, 0755), 0);
	const char *av[] = {f->shim, "--log", log, "--status", status, "--pid-file", pidf,
			    "--", "sh", "-c", script, NULL};
	pid_t pid;
	int got = 0, claimed;
	unsigned long long start = 0;
	assert_int_equal(posix_spawn(&pid, f->shim, NULL, NULL, (char **)av, environ), 0);
	for (int i = 0; i < 2000 && got != 2; i++) {
		free(text);
		text = NULL;
		if (read_file(pidf, 256, &text, NULL) == 0)
			got = sscanf(text, "%d %llu", &claimed, &start);
		if (got != 2)
			usleep(1000);
	}
	assert_int_equal(got, 2);
	assert_int_equal(claimed, (int)pid);
	*ext = xasprintf("%d:%llu", (int)pid, start);
	free(text);
	free(dir);
	free(log);
	free(status);
	free(pidf);
	return pid;
}

/* A try whose supervisor survived the daemon is re-attached, never started again: stored as
 * running, and stored as queued when the daemon died between the spawn and its commit. */
static void test_recovery_reattaches_running_tries(void **state)
{
	struct fx *f = *state;
	char src[1024];
	snprintf(src, sizeof(src),
		 "local d = dag { id = 'rec_run' }\n"
		 "local a = d:task 'a' { cmd = 'echo rerun >> %s/a.rerun' }\n"
		 "local q = d:task 'q' { cmd = 'echo rerun >> %s/q.rerun' }\n"
		 "local z = d:task 'z' { cmd = '/bin/true' }\n"
		 "d:flow({ a, q } >> z)\n"
		 "return d\n", f->home, f->home);
	struct dag *d = load_dag(f, src);
	struct run_row r = queue_run(f, d);
	char *ext_a = NULL, *ext_q = NULL;
	pid_t sa = spawn_supervisor(f, &r, "a", "sleep 0.3; echo attached", &ext_a);
	pid_t sq = spawn_supervisor(f, &r, "q", "sleep 0.3; echo attached", &ext_q);
	struct ti_row row = stored_ti(d, &r, "a", "running", 1);
	row.external_id = ext_a;
	row.pid = (int)sa;
	row.start_date = now_usec();
	put_ti(f, &row);
	row = stored_ti(d, &r, "q", "queued", 1);
	row.external_id = ext_q;
	put_ti(f, &row);
	row = stored_ti(d, &r, "z", "none", 0);
	put_ti(f, &row);

	resume(f, d, &r);
	assert_string_equal(f->final.state, "success");
	struct tis t = load_tis(f, r.pk);
	assert_ti(&t, "a", "success", 1);
	assert_ti(&t, "q", "success", 1);
	assert_ti(&t, "z", "success", 1);
	free_tis(&t);
	char p[160];
	snprintf(p, sizeof(p), "%s/a.rerun", f->home);
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s/q.rerun", f->home);
	assert_false(exists(p));
	char *log = runs_log_path(f->home, r.dag_id, r.run_id, "a", -1, 1, "log"), *text = NULL;
	assert_int_equal(read_file(log, 1 << 16, &text, NULL), 0);
	assert_non_null(strstr(text, "attached"));
	free(text);
	free(log);
	waitpid(sa, NULL, 0);
	waitpid(sq, NULL, 0);
	run_row_free(&r);
}

/* Queued, with no supervisor: the daemon died after committing queued and before the spawn. The
 * same try is started now. */
static void test_recovery_starts_queued_tries_without_supervisor(void **state)
{
	struct fx *f = *state;
	char src[512];
	snprintf(src, sizeof(src),
		 "local d = dag { id = 'rec_queued' }\n"
		 "d:task 'a' { cmd = 'echo $SLUICE_TRY_NUMBER >> %s/a.ran' }\n"
		 "return d\n", f->home);
	struct dag *d = load_dag(f, src);
	struct run_row r = queue_run(f, d);
	struct ti_row row = stored_ti(d, &r, "a", "queued", 1);
	row.queued_when = now_usec();
	put_ti(f, &row);

	resume(f, d, &r);
	assert_string_equal(f->final.state, "success");
	struct tis t = load_tis(f, r.pk);
	assert_ti(&t, "a", "success", 1);
	free_tis(&t);
	char p[160], *text = NULL;
	snprintf(p, sizeof(p), "%s/a.ran", f->home);
	assert_int_equal(read_file(p, 256, &text, NULL), 0);
	assert_string_equal(text, "1\n"); /* once, as try 1 */
	free(text);
	run_row_free(&r);
}

/* Running, but its supervisor is gone and left no status: the try is lost, and retried. */
static void test_recovery_counts_a_vanished_try_as_lost(void **state)
{
	struct fx *f = *state;
	static const char src[] =
		"local d = dag { id = 'rec_lost' }\n"
		"d:task 'a' { cmd = 'test $SLUICE_TRY_NUMBER = 2', retries = 1, retry_delay = '0.05s' }\n"
		"return d\n";
	struct dag *d = load_dag(f, src);
	struct run_row r = queue_run(f, d);
	struct ti_row row = stored_ti(d, &r, "a", "running", 1);
	row.external_id = xstrdup("999999:12345");
	row.start_date = now_usec();
	int64_t pk = put_ti(f, &row);

	resume(f, d, &r);
	assert_string_equal(f->final.state, "success");
	struct tis t = load_tis(f, r.pk);
	assert_ti(&t, "a", "success", 2);
	free_tis(&t);
	struct tries h = load_tries(f, pk);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.v[0].state, "up_for_retry");
	assert_non_null(strstr(h.v[0].message, "lost"));
	free_tries(&h);
	run_row_free(&r);
}

/* Up for retry: the retry timer is re-armed for the stored next_retry_at (one in the past fires
 * at once); scheduled instances go straight back to the ready queue. */
static void test_recovery_rearms_retries(void **state)
{
	struct fx *f = *state;
	static const char src[] =
		"local d = dag { id = 'rec_retry' }\n"
		"d:task 'later' { cmd = 'test $SLUICE_TRY_NUMBER = 2', retries = 1, retry_delay = '1h' }\n"
		"d:task 'overdue' { cmd = 'test $SLUICE_TRY_NUMBER = 2', retries = 1, retry_delay = '1h' }\n"
		"d:task 'ready' { cmd = '/bin/true' }\n"
		"return d\n";
	struct dag *d = load_dag(f, src);
	struct run_row r = queue_run(f, d);
	usec_t now = now_usec(), due = now + 400 * MSEC;
	struct ti_row row = stored_ti(d, &r, "later", "up_for_retry", 1);
	row.end_date = now;
	row.next_retry_at = due;
	put_ti(f, &row);
	row = stored_ti(d, &r, "overdue", "up_for_retry", 1);
	row.end_date = now - 3600 * USEC_PER_SEC;
	row.next_retry_at = now - 1;
	put_ti(f, &row);
	row = stored_ti(d, &r, "ready", "scheduled", 0);
	put_ti(f, &row);

	resume(f, d, &r);
	assert_string_equal(f->final.state, "success");
	struct tis t = load_tis(f, r.pk);
	assert_ti(&t, "later", "success", 2);
	assert_ti(&t, "overdue", "success", 2);
	assert_ti(&t, "ready", "success", 1);
	/* Not the task's 1 h retry_delay: the stored time. */
	assert_true(ti_of(&t, "later")->queued_when >= due);
	assert_true(ti_of(&t, "overdue")->queued_when < due);
	free_tis(&t);
	run_row_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_delay_arithmetic),
		cmocka_unit_test_setup_teardown(test_every_trigger_rule_decides_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_decide_as_early_as_the_counts_allow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_through_the_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_through_the_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_leaves_finished_instances_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_reattaches_running_tries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_starts_queued_tries_without_supervisor, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recovery_counts_a_vanished_try_as_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_rearms_retries, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
