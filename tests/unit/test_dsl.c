/* The Lua DSL loader: good files produce the DAG they describe; every kind of bad file produces
 * one import error "file:line: message" and never hangs or kills the process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "orchestrator/dag_lua.h"
#include "base/util.h"

static struct dag_load ld;

static int load_lim(const char *src, const struct dag_lua_limits *lim)
{
	dag_load_clear(&ld);
	return dag_lua_load("/dags/t.lua", "t.lua", src, strlen(src), NULL, lim, &ld);
}

static int load(const char *src) { return load_lim(src, NULL); }

static int teardown(void **state)
{
	dag_load_clear(&ld);
	(void)state;
	return 0;
}

/* Asserts that src fails with an error that starts with "t.lua:LINE:" and contains needle. */
static void expect_error(const char *src, int line, const char *needle)
{
	assert_int_not_equal(load(src), 0);
	assert_non_null(ld.error);
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "t.lua:%d:", line);
	if (strncmp(ld.error, prefix, strlen(prefix)) || !strstr(ld.error, needle)) {
		print_error("error was: %s\nwanted prefix %s and \"%s\"\n", ld.error, prefix, needle);
		fail();
	}
	assert_int_equal(ld.error_line, line);
	assert_int_equal(ld.ndags, 0);
}

static const struct task *task(const struct dag *d, const char *id)
{
	int i = dag_task_index(d, id);
	assert_true(i >= 0);
	return &d->tasks[i];
}

static bool has_up(const struct dag *d, const char *t, const char *up)
{
	const struct task *x = task(d, t);
	int u = dag_task_index(d, up);
	for (size_t i = 0; i < x->n_up; i++)
		if (x->upstream[i] == u)
			return true;
	return false;
}

static void test_flow_forms(void **state)
{
	const char *src =
		"local d = dag { id = 'flows', schedule = '@daily' }\n"
		"local a = d:task 'a' { cmd = 'true' }\n"
		"local b = d:task 'b' { cmd = 'true' }\n"
		"local c = d:task 'c' { cmd = 'true' }\n"
		"local e = d:task 'e' { cmd = 'true' }\n"
		"local f = d:task 'f' { cmd = {'echo', 'hi'}, after = { 'e' } }\n"
		"local g = d:task 'g' { cmd = 'true', after = { a } }\n"
		"local h = d:task 'h' { cmd = 'true' }\n"
		"local i = d:task 'i' { cmd = 'true' }\n"
		"d:flow(a >> b >> {c, e}, {c, e} >> h)\n"
		"d:chain(h, i)\n"
		"i:after(g)\n"
		"g:before(h)\n"
		"return d\n";
	assert_int_equal(load(src), 0);
	assert_int_equal(ld.ndags, 1);
	struct dag *d = ld.dags[0];
	assert_string_equal(d->dag_id, "flows");
	assert_int_equal(d->ntasks, 8);
	assert_true(has_up(d, "b", "a"));
	assert_true(has_up(d, "c", "b"));
	assert_true(has_up(d, "e", "b"));
	assert_true(has_up(d, "h", "c"));
	assert_true(has_up(d, "h", "e"));
	assert_true(has_up(d, "i", "h"));
	assert_true(has_up(d, "f", "e"));
	assert_true(has_up(d, "g", "a"));
	assert_true(has_up(d, "i", "g"));
	assert_true(has_up(d, "h", "g"));
	assert_int_equal(task(d, "a")->n_up, 0);
	assert_non_null(task(d, "f")->cmd_argv);
	assert_string_equal(task(d, "f")->cmd_argv[1], "hi");
	assert_null(task(d, "f")->cmd_argv[2]);
	assert_string_equal(task(d, "a")->cmd_shell, "true");
	assert_int_equal(task(d, "b")->line, 3);
	(void)state;
}

static void test_defaults_and_overrides(void **state)
{
	const char *src =
		"local d = dag {\n"
		"  id = 'args', description = 'x', tags = {'t1', 't2'}, owner = 'me',\n"
		"  params = { region = 'eu', n = 3, nested = { k = true } },\n"
		"  default_args = { retries = 3, retry_delay = '30s', retry_exponential_backoff = true,\n"
		"                   max_retry_delay = '10m', execution_timeout = '1h', pool = 'p1',\n"
		"                   env = { LANG = 'C', A = '1' } },\n"
		"  on_failure = { cmd = 'notify {{ dag_id }}' },\n"
		"}\n"
		"local a = d:task 'a' { cmd = 'true', retries = 5, env = { A = '2' }, trigger_rule = 'all_done',\n"
		"                       no_retry_exit_codes = {2, 3}, pool_slots = 2 }\n"
		"local b = d:task 'b' { cmd = 'true', retry_delay = 2 }\n"
		"return d\n";
	assert_int_equal(load(src), 0);
	struct dag *d = ld.dags[0];
	const struct task *a = task(d, "a"), *b = task(d, "b");
	assert_int_equal(a->retries, 5);
	assert_int_equal(b->retries, 3);
	assert_int_equal(a->retry_delay, 30 * USEC_PER_SEC);
	assert_int_equal(b->retry_delay, 2 * USEC_PER_SEC);
	assert_true(a->retry_exponential_backoff);
	assert_int_equal(a->max_retry_delay, 600 * USEC_PER_SEC);
	assert_int_equal(a->execution_timeout, 3600 * USEC_PER_SEC);
	assert_string_equal(a->pool, "p1");
	assert_int_equal(a->pool_slots, 2);
	assert_int_equal(a->trigger_rule, TR_ALL_DONE);
	assert_int_equal(b->trigger_rule, TR_ALL_SUCCESS);
	assert_int_equal(a->n_no_retry, 2);
	assert_false(task_retryable_exit(a, 2));
	assert_true(task_retryable_exit(a, 1));
	/* env: default_args merged with the task's, the task winning */
	int found = 0;
	for (size_t i = 0; i < a->n_env; i++) {
		if (!strcmp(a->env[i].key, "A")) {
			assert_string_equal(a->env[i].value, "2");
			found++;
		}
		if (!strcmp(a->env[i].key, "LANG"))
			found++;
	}
	assert_int_equal(found, 2);
	assert_string_equal(cJSON_GetObjectItem(d->params, "region")->valuestring, "eu");
	assert_int_equal(cJSON_GetObjectItem(d->params, "n")->valueint, 3);
	assert_string_equal(d->on_failure.cmd, "notify {{ dag_id }}");
	assert_int_equal(d->n_tags, 2);
	assert_string_equal(d->owner, "me");
	assert_string_equal(a->executor, "local");
	(void)state;
}

static void test_map_and_sensor(void **state)
{
	const char *src =
		"local d = dag { id = 'm' }\n"
		"local s = d:sensor 'landed' { path = '/tmp/x', poke_interval = '1s', timeout = '5s' }\n"
		"local m = d:map 'shard' { over = {'a', 'b', 3}, cmd = 'echo {{ item }}' }\n"
		"local t = d:map 'dyn' { over = '{{ outputs.landed.items }}', cmd = 'echo {{ item }}' }\n"
		"d:flow(s >> m >> t)\n"
		"return d\n";
	assert_int_equal(load(src), 0);
	struct dag *d = ld.dags[0];
	const struct task *s = task(d, "landed"), *m = task(d, "shard"), *t = task(d, "dyn");
	assert_int_equal(s->kind, TASK_SENSOR);
	assert_string_equal(s->sensor_path, "/tmp/x");
	assert_int_equal(s->poke_interval, USEC_PER_SEC);
	assert_int_equal(s->sensor_timeout, 5 * USEC_PER_SEC);
	assert_true(m->mapped);
	assert_int_equal(m->n_over, 3);
	assert_string_equal(m->over_items[2], "3");
	assert_string_equal(t->over_template, "{{ outputs.landed.items }}");
	(void)state;
}

static void test_multiple_dags_and_weights(void **state)
{
	const char *src =
		"local out = {}\n"
		"for i = 1, 3 do\n"
		"  local d = dag { id = 'gen_' .. i }\n"
		"  local a = d:task 'a' { cmd = 'true' }\n"
		"  local b = d:task 'b' { cmd = 'true', priority_weight = 10 }\n"
		"  local c = d:task 'c' { cmd = 'true' }\n"
		"  d:flow(a >> b >> c)\n"
		"  out[#out + 1] = d\n"
		"end\n"
		"return out\n";
	assert_int_equal(load(src), 0);
	assert_int_equal(ld.ndags, 3);
	assert_string_equal(ld.dags[2]->dag_id, "gen_3");
	/* downstream weight rule: own + all downstream */
	assert_int_equal(task(ld.dags[0], "a")->effective_weight, 12);
	assert_int_equal(task(ld.dags[0], "b")->effective_weight, 11);
	assert_int_equal(task(ld.dags[0], "c")->effective_weight, 1);
	assert_int_equal(ld.dags[0]->topo[0], 0);
	(void)state;
}

static void test_syntax_error(void **state)
{
	expect_error("local d = dag { id = 'x' }\n\nlocal a = d:task 'a' { cmd = 'true' \nreturn d\n", 4, "expected");
	(void)state;
}

static void test_cycle(void **state)
{
	expect_error("local d = dag { id = 'x' }\n"
		     "local a = d:task 'a' { cmd = 'true' }\n"
		     "local b = d:task 'b' { cmd = 'true' }\n"
		     "local c = d:task 'c' { cmd = 'true' }\n"
		     "d:flow(a >> b >> c >> a)\n"
		     "return d\n",
		     2, "cycle in task dependencies: a -> b -> c -> a");
	(void)state;
}

static void test_self_dependency(void **state)
{
	expect_error("local d = dag { id = 'x' }\nlocal a = d:task 'a' { cmd = 'true' }\nd:flow(a >> a)\nreturn d\n",
		     3, "cannot depend on itself");
	(void)state;
}

static void test_unknown_upstream(void **state)
{
	expect_error("local d = dag { id = 'x' }\n"
		     "local a = d:task 'a' { cmd = 'true', after = { 'nope' } }\n"
		     "return d\n",
		     2, "unknown upstream task 'nope'");
	(void)state;
}

static void test_duplicate_task(void **state)
{
	expect_error("local d = dag { id = 'x' }\n"
		     "d:task 'a' { cmd = 'true' }\n"
		     "d:task 'a' { cmd = 'false' }\n"
		     "return d\n",
		     3, "duplicate task id 'a' (first declared at line 2)");
	(void)state;
}

static void test_duplicate_dag_in_file(void **state)
{
	expect_error("local d = dag { id = 'x' }\nd:task 'a' { cmd = 'true' }\n"
		     "local e = dag { id = 'x' }\ne:task 'a' { cmd = 'true' }\nreturn {d, e}\n",
		     3, "duplicate DAG id 'x'");
	(void)state;
}

static void test_bad_cron(void **state)
{
	expect_error("\nlocal d = dag { id = 'x', schedule = '61 * * * *' }\nreturn d\n", 2, "minute 61");
	expect_error("local d = dag { id = 'x', schedule = 'every day' }\nreturn d\n", 1, "schedule");
	(void)state;
}

static void test_bad_duration(void **state)
{
	expect_error("local d = dag { id = 'x' }\nd:task 'a' { cmd = 'true', retry_delay = '5 parsecs' }\nreturn d\n",
		     2, "retry_delay is not a valid duration");
	expect_error("local d = dag { id = 'x', dagrun_timeout = {} }\nreturn d\n", 1, "dagrun_timeout");
	(void)state;
}

static void test_bad_trigger_rule(void **state)
{
	expect_error("local d = dag { id = 'x' }\n\nd:task 'a' { cmd = 'true', trigger_rule = 'most_success' }\nreturn d\n",
		     3, "unknown trigger rule 'most_success'");
	(void)state;
}

static void test_bad_executor(void **state)
{
	expect_error("local d = dag { id = 'x', default_args = { executor = 'mainframe' } }\nreturn d\n", 1,
		     "'mainframe' is not a known executor");
	(void)state;
}

static void test_unknown_field(void **state)
{
	expect_error("local d = dag { id = 'x' }\nd:task 'a' { cmd = 'true', retires = 3 }\nreturn d\n", 2,
		     "unknown field 'retires' (did you mean 'retries'?)");
	expect_error("local d = dag { id = 'x', shedule = '@daily' }\nreturn d\n", 1, "unknown field 'shedule'");
	(void)state;
}

static void test_bad_ids(void **state)
{
	expect_error("local d = dag { id = 'bad id' }\nreturn d\n", 1, "dag id 'bad id' is invalid");
	expect_error("local d = dag { id = 'x' }\nd:task 'a/b' { cmd = 'true' }\nreturn d\n", 2, "task id 'a/b' is invalid");
	expect_error("local d = dag { description = 'no id' }\nreturn d\n", 1, "id is required");
	(void)state;
}

static void test_missing_cmd_and_return(void **state)
{
	expect_error("local d = dag { id = 'x' }\nd:task 'a' { retries = 1 }\nreturn d\n", 2, "cmd is required");
	expect_error("local d = dag { id = 'x' }\nd:task 'a' { cmd = 'true' }\n", 1, "does not return it");
	expect_error("return 42\n", 1, "must return a DAG");
	expect_error("local d = dag { id = 'x' }\nreturn d\n", 1, "has no tasks");
	(void)state;
}

static void test_cross_dag_edge(void **state)
{
	expect_error("local d = dag { id = 'x' }\nlocal e = dag { id = 'y' }\n"
		     "local a = d:task 'a' { cmd = 'true' }\nlocal b = e:task 'b' { cmd = 'true' }\n"
		     "d:flow(a >> b)\nreturn {d, e}\n",
		     5, "belong to different DAGs");
	(void)state;
}

static void test_runtime_error_line(void **state)
{
	expect_error("local d = dag { id = 'x' }\nlocal t = nil\n\nt.foo = 1\nreturn d\n", 4, "attempt to index");
	expect_error("error('custom failure')\n", 1, "custom failure");
	(void)state;
}

static void test_sandbox_has_no_os_io(void **state)
{
	expect_error("os.execute('touch /tmp/pwned')\n", 1, "attempt to index a nil value (global 'os')");
	expect_error("local f = io.open('/etc/passwd')\n", 1, "global 'io'");
	expect_error("local x = dofile('/etc/passwd')\n", 1, "global 'dofile'");
	expect_error("local x = loadfile('/etc/passwd')\n", 1, "global 'loadfile'");
	expect_error("local x = string.dump(print)\n", 1, "field 'dump'");
	expect_error("require 'os'\n", 1, "require is not available");
	expect_error("local x = debug.getinfo(1)\n", 1, "global 'debug'");
	(void)state;
}

static void test_load_text_only(void **state)
{
	/* A binary chunk (starts with ESC) is refused; text chunks work and see the sandbox. */
	expect_error("local f, e = load('\\27Lua')\nerror(e)\n", 2, "binary");
	/* A file that is itself a binary chunk, and errors Lua gives no position: the message
	 * still names the file (found by tests/fuzz/fuzz_dsl.c). */
	static const char *const unplaced[] = {"\33Lua", "error('no position', 0)\n", "error({})\n"};
	for (size_t i = 0; i < sizeof(unplaced) / sizeof(unplaced[0]); i++) {
		assert_int_not_equal(load(unplaced[i]), 0);
		if (strncmp(ld.error, "t.lua:", 6))
			fail_msg("%s gave %s", unplaced[i], ld.error);
	}
	assert_int_equal(load("local f = load('return dag')\nlocal d = f() { id = 'x' }\n"
			      "d:task 'a' { cmd = 'true' }\nreturn d\n"), 0);
	(void)state;
}

static void test_infinite_loop(void **state)
{
	struct dag_lua_limits lim = {DAG_LUA_DEFAULT_MEMORY, 2000000, 5 * USEC_PER_SEC};
	usec_t t0 = mono_usec();
	assert_int_not_equal(load_lim("local d = dag { id = 'x' }\n\nwhile true do end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "t.lua:3: DAG file exceeded the instruction limit"));
	/* pcall cannot swallow the limit */
	assert_int_not_equal(load_lim("while true do pcall(function() while true do end end) end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "instruction limit"));
	assert_int_not_equal(load_lim("while true do xpcall(function() while true do end end, print) end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "instruction limit"));
	assert_true(mono_usec() - t0 < 3 * USEC_PER_SEC);
	(void)state;
}

static void test_wall_clock_limit(void **state)
{
	/* Instruction cap out of reach: the wall clock stops it. */
	struct dag_lua_limits lim = {DAG_LUA_DEFAULT_MEMORY, UINT64_MAX, 300000};
	usec_t t0 = mono_usec();
	assert_int_not_equal(load_lim("while true do end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "time limit"));
	assert_true(mono_usec() - t0 < 2 * USEC_PER_SEC);
	(void)state;
}

static void test_default_limits_stop_loop_quickly(void **state)
{
	usec_t t0 = mono_usec();
	assert_int_not_equal(load("while true do end\n"), 0);
	assert_true(mono_usec() - t0 < 6 * USEC_PER_SEC);
	(void)state;
}

static void test_memory_bomb(void **state)
{
	struct dag_lua_limits lim = {16u << 20, DAG_LUA_DEFAULT_INSTRUCTIONS, 5 * USEC_PER_SEC};
	assert_int_not_equal(load_lim("local t = {}\nwhile true do t[#t + 1] = string.rep('x', 1000) .. #t end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "memory limit of 16 MiB"));
	assert_non_null(strstr(ld.error, "t.lua:2:"));
	assert_int_not_equal(load_lim("local s = string.rep('x', 1 << 30)\n", &lim), 0);
	assert_non_null(strstr(ld.error, "memory limit"));
	assert_int_not_equal(load_lim("local s = 'x'\nwhile true do s = s .. s end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "memory limit"));
	/* caught by pcall: still an import error */
	assert_int_not_equal(load_lim("local t = {}\nwhile true do pcall(function() t[#t+1] = string.rep('y', 4096) .. #t end) end\n", &lim), 0);
	assert_non_null(strstr(ld.error, "memory limit"));
	(void)state;
}

/* The cap is on live memory: garbage over it is collected (Lua's emergency collection after a
 * refused request), and only a request still over the cap after that kills the file. ~10 MiB
 * live plus ~20 MiB of garbage loads under 16 MiB; so does a 100,000-task DAG under the default. */
static void test_memory_cap_counts_live_memory(void **state)
{
	struct dag_lua_limits lim = {16u << 20, DAG_LUA_DEFAULT_INSTRUCTIONS, 5 * USEC_PER_SEC};
	assert_int_equal(load_lim("local keep = {}\nfor i = 1, 9000 do keep[i] = string.rep('k', 1000) .. i end\n"
				  "for i = 1, 20000 do local g = string.rep('g', 1000) .. i end\n"
				  "local d = dag { id = 'x' }\nd:task 't' { cmd = 'true' }\nreturn d\n", &lim), 0);
	assert_int_not_equal(load_lim("local keep = {}\nfor i = 1, 20000 do keep[i] = string.rep('k', 1000) .. i end\n"
				      "return dag { id = 'x' }\n", &lim), 0);
	assert_non_null(strstr(ld.error, "memory limit of 16 MiB"));
	assert_int_equal(load("local d = dag { id = 'big', max_active_tasks = 16 }\n"
			      "for i = 1, 100000 do d:task(string.format('t%06d', i)) { cmd = { '/bin/true' } } end\n"
			      "return d\n"), 0);
	(void)state;
}

static void test_gc_finalizer_loop(void **state)
{
	struct dag_lua_limits lim = {DAG_LUA_DEFAULT_MEMORY, 2000000, 2 * USEC_PER_SEC};
	usec_t t0 = mono_usec();
	assert_int_not_equal(load_lim("setmetatable({}, { __gc = function() while true do end end })\n"
				      "local d = dag { id = 'x' }\nd:task 'a' { cmd = 'true' }\nreturn d\n", &lim), 0);
	assert_non_null(strstr(ld.error, "t.lua:1: __gc metamethods are not allowed"));
	assert_true(mono_usec() - t0 < 3 * USEC_PER_SEC);
	/* The DSL's own metatables are out of reach. */
	assert_int_not_equal(load_lim("local d = dag { id = 'x' }\nlocal mt = getmetatable(d)\nmt.__gc = print\n", &lim), 0);
	assert_non_null(strstr(ld.error, "t.lua:3:"));
	/* Other metatables work as usual. */
	assert_int_equal(load_lim("local v = setmetatable({}, { __index = function() return 'x' end })\n"
				  "local d = dag { id = v.anything }\nd:task 'a' { cmd = 'true' }\nreturn d\n", &lim), 0);
	(void)state;
}

static void test_require_lib(void **state)
{
	char dir[] = "/tmp/sluice-dsl-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *p = xasprintf("%s/common.lua", dir);
	FILE *f = fopen(p, "w");
	fputs("local M = {}\nfunction M.make(id)\n  local d = dag { id = id }\n  d:task 'a' { cmd = 'true' }\n"
	      "  return d\nend\nreturn M\n", f);
	fclose(f);
	const char *src = "local c = require 'common'\nassert(require 'common' == c)\nreturn c.make('from_lib')\n";
	dag_load_clear(&ld);
	assert_int_equal(dag_lua_load("/dags/t.lua", "t.lua", src, strlen(src), dir, NULL, &ld), 0);
	assert_string_equal(ld.dags[0]->dag_id, "from_lib");
	const char *bad = "require '../etc/passwd'\n";
	dag_load_clear(&ld);
	assert_int_not_equal(dag_lua_load("/dags/t.lua", "t.lua", bad, strlen(bad), dir, NULL, &ld), 0);
	assert_non_null(strstr(ld.error, "invalid module name"));
	const char *missing = "require 'nothere'\n";
	dag_load_clear(&ld);
	assert_int_not_equal(dag_lua_load("/dags/t.lua", "t.lua", missing, strlen(missing), dir, NULL, &ld), 0);
	assert_non_null(strstr(ld.error, "cannot load module 'nothere'"));
	unlink(p);
	rmdir(dir);
	free(p);
	(void)state;
}

static void test_start_date_in_zone(void **state)
{
	assert_int_equal(load("local d = dag { id = 'z', timezone = 'Europe/Berlin', start_date = '2026-11-01',\n"
			      "  end_date = '2026-12-01T00:00:00Z', schedule = '0 3 * * *' }\n"
			      "d:task 'a' { cmd = 'true' }\nreturn d\n"),
			 0);
	usec_t want;
	parse_iso8601("2026-10-31T23:00:00Z", &want);
	assert_int_equal(ld.dags[0]->start_date, want);
	parse_iso8601("2026-12-01T00:00:00Z", &want);
	assert_int_equal(ld.dags[0]->end_date, want);
	expect_error("local d = dag { id = 'z', timezone = 'Mars/Olympus' }\nreturn d\n", 1, "timezone");
	expect_error("local d = dag { id = 'z', start_date = 'yesterday' }\nreturn d\n", 1, "not a valid date");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_flow_forms, teardown),
		cmocka_unit_test_teardown(test_defaults_and_overrides, teardown),
		cmocka_unit_test_teardown(test_map_and_sensor, teardown),
		cmocka_unit_test_teardown(test_multiple_dags_and_weights, teardown),
		cmocka_unit_test_teardown(test_syntax_error, teardown),
		cmocka_unit_test_teardown(test_cycle, teardown),
		cmocka_unit_test_teardown(test_self_dependency, teardown),
		cmocka_unit_test_teardown(test_unknown_upstream, teardown),
		cmocka_unit_test_teardown(test_duplicate_task, teardown),
		cmocka_unit_test_teardown(test_duplicate_dag_in_file, teardown),
		cmocka_unit_test_teardown(test_bad_cron, teardown),
		cmocka_unit_test_teardown(test_bad_duration, teardown),
		cmocka_unit_test_teardown(test_bad_trigger_rule, teardown),
		cmocka_unit_test_teardown(test_bad_executor, teardown),
		cmocka_unit_test_teardown(test_unknown_field, teardown),
		cmocka_unit_test_teardown(test_bad_ids, teardown),
		cmocka_unit_test_teardown(test_missing_cmd_and_return, teardown),
		cmocka_unit_test_teardown(test_cross_dag_edge, teardown),
		cmocka_unit_test_teardown(test_runtime_error_line, teardown),
		cmocka_unit_test_teardown(test_sandbox_has_no_os_io, teardown),
		cmocka_unit_test_teardown(test_load_text_only, teardown),
		cmocka_unit_test_teardown(test_infinite_loop, teardown),
		cmocka_unit_test_teardown(test_wall_clock_limit, teardown),
		cmocka_unit_test_teardown(test_default_limits_stop_loop_quickly, teardown),
		cmocka_unit_test_teardown(test_memory_bomb, teardown),
		cmocka_unit_test_teardown(test_memory_cap_counts_live_memory, teardown),
		cmocka_unit_test_teardown(test_gc_finalizer_loop, teardown),
		cmocka_unit_test_teardown(test_require_lib, teardown),
		cmocka_unit_test_teardown(test_start_date_in_zone, teardown),
	};
	return cmocka_run_group_tests_name("dsl", tests, NULL, NULL);
}
