/* The JSON request bodies of the API. The first byte picks the body, the rest is its text:
 *   0 POST /dags/{dag_id}/dagRuns: body_trigger(), runs_check(), then the conf validated against
 *     the params of a DAG with schemas (params_validate, as runs_queue does)
 *   1 POST /dags/~/dagRuns/~/taskInstances/list: body_ti_filter(), then the filter applied
 *   2 POST /dags/{dag_id}/clearTaskInstances: body_clear_tis()
 *   3 POST /dags/{dag_id}/updateTaskInstancesState: body_update_tis()
 *   4 a param's JSON Schema and a value, {"schema": ..., "value": ...}: params_check_schema()
 *     and params_check_value() (schemas come from DAG files, values from confs)
 * Every body is parsed by cJSON_Parse as the handlers do (web/bodies.h). */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <math.h>

#include "orchestrator/dag_lua.h"
#include "orchestrator/params.h"
#include "web/bodies.h"

static struct dag_load ld;

static const char dag_src[] =
	"local d = dag { id = 'fuzz', params = {\n"
	"  region = 'eu',\n"
	"  days = param { default = 3, type = 'integer', minimum = 1, maximum = 31, multipleOf = 1 },\n"
	"  mode = param { default = 'full', enum = { 'full', 'delta' } },\n"
	"  email = param { type = 'string', pattern = '^[^@]+@[^@]+$', maxLength = 64 },\n"
	"  tags = param { default = { 'a' }, type = 'array', items = { type = 'string', minLength = 1 },\n"
	"                 uniqueItems = true, maxItems = 8 },\n"
	"  opts = param { default = { k = 1 }, type = 'object', required = { 'k' },\n"
	"                 properties = { k = { type = { 'number', 'null' }, exclusiveMinimum = 0 } } },\n"
	"} }\n"
	"d:task 't' { cmd = 'echo {{ params.region }}' }\n"
	"return d\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (dag_lua_load("/dags/fuzz.lua", "fuzz.lua", dag_src, strlen(dag_src), NULL, NULL, &ld) < 0) {
		fprintf(stderr, "fuzz_json: the DAG does not load: %s\n", ld.error);
		abort();
	}
	(void)argc;
	(void)argv;
	return 0;
}

static void trigger(const cJSON *body)
{
	struct run_request req;
	char *conf = NULL, *err = NULL;
	if (body_trigger(body, &req, &conf, &err) == 0 && runs_check(&req, &err) == 0) {
		cJSON *c = req.conf ? cJSON_Parse(req.conf) : NULL;
		FUZZ_CHECK(!req.conf || cJSON_IsObject(c), "conf printed as %s does not parse back", req.conf);
		if (params_validate(ld.dags[0], c, &err) < 0)
			FUZZ_CHECK(err && strstr(err, "param '"), "a refused conf without its param: %s", err);
		cJSON_Delete(c);
	}
	free(err);
	free(conf);
}

/* The filter's first value of v, or def. */
static char *first(const struct ti_values *v, const char *def)
{
	return (char *)(v->n ? v->v[0] : def);
}

static void ti_list(const cJSON *body)
{
	struct ti_filter f;
	char *err = NULL;
	if (body_ti_filter(body, &f, &err) == 0) {
		/* An instance made of the filter's own values, so the matching goes past the first test. */
		struct run_row run = {.dag_id = first(&f.dag_ids, "fuzz"), .run_id = first(&f.run_ids, "r"),
				      .logical_date = 1772323200000000};
		struct ti_row ti;
		ti_row_init(&ti);
		ti.dag_id = run.dag_id, ti.run_id = run.run_id, ti.task_id = first(&f.task_ids, "t");
		ti.state = first(&f.states, "success"), ti.pool = first(&f.pools, "default_pool");
		ti.executor = first(&f.executors, "local"), ti.start_date = ti.end_date = run.logical_date;
		ti.duration = isnan(f.duration_gte) ? 1.5 : f.duration_gte;
		(void)ti_filter_run(&f, &run);
		(void)ti_filter_ti(&f, &ti);
	} else {
		FUZZ_CHECK(err, "refused without a message");
	}
	free(err);
}

static void clear_mark(const cJSON *body, bool clear)
{
	struct body_clear c;
	struct body_mark m;
	char *err = NULL;
	int rc = clear ? body_clear_tis(body, &c, &err) : body_update_tis(body, &m, &err);
	FUZZ_CHECK(rc == 0 ? !err : err != NULL, "returned %d with message %s", rc, err);
	if (rc == 0 && clear && c.task_ids) {
		const cJSON *it;
		cJSON_ArrayForEach(it, c.task_ids)
			(void)(cJSON_IsString(it) && strlen(it->valuestring));
	}
	if (rc == 0 && !clear)
		FUZZ_CHECK(m.task_id && m.state && (m.run_id || m.has_date || m.when == USEC_NONE), "a mark body half read");
	free(err);
}

static void schema(const cJSON *body)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "schema");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
	char *err = NULL;
	if (cJSON_IsObject(s) && params_check_schema(s, &err) == 0 && v) {
		if (params_check_value(s, v, "p", &err) < 0)
			FUZZ_CHECK(err, "a refused value without a message");
	}
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = fuzz_str(data + 1, size - 1);
	cJSON *body = cJSON_Parse(text);
	switch (data[0] % 5) {
	case 0: trigger(body); break;
	case 1: ti_list(body); break;
	case 2: clear_mark(body, true); break;
	case 3: clear_mark(body, false); break;
	default: schema(body); break;
	}
	cJSON_Delete(body);
	free(text);
	return 0;
}
