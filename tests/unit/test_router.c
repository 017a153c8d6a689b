/* The REST router (web/router.c): the most specific route wins, path parameters, 404 versus 405,
 * and the real route tables have no two rows that the router could not tell apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "web/router.h"
#include "web/ti_filter.h"

static void h(struct req *r) { (void)r; }

static const struct route ti_routes[] = {
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", ROLE_VIEWER, h, NULL},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries", ROLE_VIEWER, h, NULL},
	{"GET", "/dags/{dag_id}", ROLE_VIEWER, h, NULL},
	{"PATCH", "/dags/{dag_id}", ROLE_OP, h, "x.edit"},
	{"POST", "/dags/~/dagRuns/list", ROLE_VIEWER, h, NULL},
	{"POST", "/dags/{dag_id}/dagRuns", ROLE_OP, h, "x.edit"},
	{NULL, NULL, ROLE_NONE, NULL, NULL},
};
static const struct route *const tables[] = {ti_routes, NULL};

static void test_most_specific_wins(void **state)
{
	struct route_params p = {0};
	bool known;
	const struct route *r = router_find(tables, "GET", "/dags/d/dagRuns/r/taskInstances/t/tries", &p, &known);
	assert_ptr_equal(r, &ti_routes[1]);
	assert_int_equal(p.n, 3);
	assert_string_equal(router_param(&p, "task_id"), "t");
	r = router_find(tables, "GET", "/dags/d/dagRuns/r/taskInstances/t/3", &p, &known);
	assert_ptr_equal(r, &ti_routes[0]);
	assert_string_equal(router_param(&p, "map_index"), "3");
	r = router_find(tables, "POST", "/dags/~/dagRuns/list", &p, &known);
	assert_ptr_equal(r, &ti_routes[4]);
	assert_int_equal(p.n, 0);
	r = router_find(tables, "POST", "/dags/etl/dagRuns", &p, &known);
	assert_ptr_equal(r, &ti_routes[5]);
	assert_string_equal(router_param(&p, "dag_id"), "etl");
	router_params_free(&p);
	(void)state;
}

static void test_not_found_and_wrong_method(void **state)
{
	struct route_params p = {0};
	bool known;
	assert_null(router_find(tables, "DELETE", "/dags/d", &p, &known));
	assert_true(known);
	assert_null(router_find(tables, "GET", "/nope", &p, &known));
	assert_false(known);
	assert_null(router_find(tables, "GET", "/dags/", &p, &known));
	assert_false(known);
	assert_null(router_find(tables, "GET", "/dags//x", &p, &known));
	assert_null(router_find(tables, "GET", "/dags/d/", &p, &known));
	assert_int_equal(p.n, 0);
	assert_null(router_param(&p, "dag_id"));
	(void)state;
}

/* Two rows of the server's tables with the same method whose paths could both match one URL and
 * have their parameters in the same places (so that neither is more specific) would make the
 * choice depend on table order. */
static bool could_clash(const char *a, const char *b)
{
	while (*a && *b) {
		const char *ae = strchr(a + 1, '/'), *be = strchr(b + 1, '/');
		size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
		if (a[1] != '{' && b[1] != '{' && (al != bl || strncmp(a, b, al)))
			return false;
		a += al;
		b += bl;
	}
	return !*a && !*b;
}

/* The places of the parameters: "/a/{x}/b" -> "LPL". */
static void shape(const char *path, char *out, size_t n)
{
	size_t k = 0;
	for (const char *p = path; *p && k + 1 < n; p++)
		if (*p == '/')
			out[k++] = p[1] == '{' ? 'P' : 'L';
	out[k] = '\0';
}

static bool same_shape(const char *a, const char *b)
{
	char sa[32], sb[32];
	shape(a, sa, sizeof(sa));
	shape(b, sb, sizeof(sb));
	return !strcmp(sa, sb);
}

static void test_server_tables_are_unambiguous(void **state)
{
	const struct route *const all[] = {api_import_error_routes, api_pool_routes, api_dag_run_routes, api_dag_routes,
					   api_ti_routes, api_ti_list_routes, api_run_op_routes, api_backfill_routes,
					   api_variable_routes, api_connection_routes, api_event_log_routes,
					   api_admin_routes, api_extra_routes, NULL};
	size_t rows = 0;
	for (size_t t = 0; all[t]; t++)
		for (const struct route *x = all[t]; x->method; x++, rows++)
			for (size_t u = t; all[u]; u++)
				for (const struct route *y = u == t ? x + 1 : all[u]; y->method; y++)
					if (!strcmp(x->method, y->method) && same_shape(x->path, y->path) &&
					    could_clash(x->path, y->path))
						fail_msg("%s %s and %s %s", x->method, x->path, y->method, y->path);
	assert_true(rows >= 40);
	(void)state;
}

/* Every route that changes something names its audit event (the eventLogs of Airflow); the
 * POSTs that only read (lists in a body, dry runs, a connection test) do not. */
static void test_changes_have_audit_events(void **state)
{
	const struct route *const real[] = {api_dag_routes, api_dag_run_routes, api_ti_routes, api_ti_list_routes,
					    api_run_op_routes, api_pool_routes, api_import_error_routes,
					    api_backfill_routes, api_variable_routes, api_connection_routes,
					    api_event_log_routes, api_admin_routes, api_extra_routes, NULL};
	static const char *const reads[] = {"/dags/~/dagRuns/list", "/dags/~/dagRuns/~/taskInstances/list",
					    "/backfills/dry_run", "/connections/test", NULL};
	int changes = 0;
	for (size_t t = 0; real[t]; t++) {
		for (const struct route *rt = real[t]; rt->method; rt++) {
			bool read_only = !strcmp(rt->method, "GET");
			for (size_t k = 0; reads[k] && !read_only; k++)
				read_only = !strcmp(rt->path, reads[k]);
			if (read_only && rt->event)
				fail_msg("%s %s only reads but names event %s", rt->method, rt->path, rt->event);
			if (!read_only && !rt->event)
				fail_msg("%s %s changes something and names no audit event", rt->method, rt->path);
			changes += !read_only;
		}
	}
	assert_true(changes >= 25);
	(void)state;
}

/* The task instance filters of Airflow's lists. */
static void test_ti_filters(void **state)
{
	struct ti_row t;
	ti_row_init(&t);
	t.dag_id = "etl";
	t.task_id = "b";
	t.state = "none";
	t.pool = "slow";
	t.executor = "local";
	t.start_date = 1000;
	t.end_date = 3000;
	t.updated_at = 3000;
	t.duration = 0.3;
	struct run_row run = {.dag_id = "etl", .run_id = "r1", .logical_date = 500};
	struct ti_filter f;
	ti_filter_init(&f);
	assert_true(ti_filter_run(&f, &run) && ti_filter_ti(&f, &t));
	f.states = (struct ti_values){{"success", "none"}, 2};
	assert_true(ti_filter_ti(&f, &t));
	f.states = (struct ti_values){{"null"}, 1};
	assert_true(ti_filter_ti(&f, &t)); /* Airflow's null */
	f.states = (struct ti_values){{"success"}, 1};
	assert_false(ti_filter_ti(&f, &t));
	ti_filter_init(&f);
	f.pools = (struct ti_values){{"default_pool"}, 1};
	assert_false(ti_filter_ti(&f, &t));
	f.pools = (struct ti_values){{"default_pool", "slow"}, 2};
	assert_true(ti_filter_ti(&f, &t));
	f.queues = (struct ti_values){{"q2"}, 1};
	assert_false(ti_filter_ti(&f, &t)); /* sluice's one queue is "default" */
	f.queues = (struct ti_values){{"default"}, 1};
	assert_true(ti_filter_ti(&f, &t));
	ti_filter_init(&f);
	f.duration_gte = 0.25;
	assert_true(ti_filter_ti(&f, &t));
	f.duration_lte = 0.29;
	assert_false(ti_filter_ti(&f, &t));
	ti_filter_init(&f);
	f.start_date.gte = 1000;
	f.end_date.lte = 3000;
	assert_true(ti_filter_ti(&f, &t)); /* bounds are inclusive */
	f.updated_at.gte = 3001;
	assert_false(ti_filter_ti(&f, &t));
	ti_filter_init(&f);
	t.end_date = USEC_NONE;
	f.end_date.lte = 1 << 30;
	assert_false(ti_filter_ti(&f, &t)); /* an unset time is outside any bound */
	ti_filter_init(&f);
	f.execution_date.gte = 501;
	assert_false(ti_filter_run(&f, &run));
	f.execution_date.gte = 500;
	f.run_ids = (struct ti_values){{"r2"}, 1};
	assert_false(ti_filter_run(&f, &run));
	ti_filter_init(&f);
	f.mapped_only = true;
	assert_false(ti_filter_ti(&f, &t));
	t.map_index = 0;
	assert_true(ti_filter_ti(&f, &t));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_have_audit_events),
		cmocka_unit_test(test_ti_filters),
		cmocka_unit_test(test_most_specific_wins),
		cmocka_unit_test(test_not_found_and_wrong_method),
		cmocka_unit_test(test_server_tables_are_unambiguous),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
