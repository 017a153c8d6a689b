/* GET /dags/{dag_id}/dagRuns[/{dag_run_id}], GET .../taskInstances[/{task_id}[/{map_index}]] */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apijson.h"

/* Looks the run up, replying 404 when it does not exist. */
static bool find_run(struct req *r, struct run_row *run)
{
	const char *dag_id = api_param(r, "dag_id"), *run_id = api_param(r, "dag_run_id");
	if (store_run_get(api_store(r), dag_id, run_id, 0, run) == 0)
		return true;
	api_problem(r, 404, "DAGRun not found", "DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found", dag_id, run_id);
	return false;
}

static void list_runs(struct req *r)
{
	int limit, offset;
	struct run_row *runs = NULL;
	const char *dag_id = api_param(r, "dag_id");
	if (!api_page(r, &limit, &offset))
		return;
	/* "~" means every DAG, as in Airflow. */
	int n = store_run_list(api_store(r), strcmp(dag_id, "~") ? dag_id : NULL, &runs);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, api_dag_run(&runs[i]));
		run_row_free(&runs[i]);
	}
	free(runs);
	api_reply_page(r, "dag_runs", all, limit, offset);
}

static void get_run(struct req *r)
{
	struct run_row run = {0};
	if (!find_run(r, &run))
		return;
	api_reply(r, 200, api_dag_run(&run));
	run_row_free(&run);
}

static void list_tis(struct req *r)
{
	int limit, offset;
	struct run_row run = {0};
	struct ti_row *tis = NULL;
	if (!api_page(r, &limit, &offset) || !find_run(r, &run))
		return;
	int n = store_ti_list(api_store(r), run.pk, &tis);
	cJSON *all = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON_AddItemToArray(all, api_task_instance(&tis[i], &run));
		ti_row_free(&tis[i]);
	}
	free(tis);
	run_row_free(&run);
	api_reply_page(r, "task_instances", all, limit, offset);
}

static void get_ti(struct req *r)
{
	struct run_row run = {0};
	struct ti_row ti;
	const char *task = api_param(r, "task_id"), *mi = api_param(r, "map_index");
	char *end = NULL;
	long map_index = mi ? strtol(mi, &end, 10) : -1;
	if (mi && (*end || !*mi)) {
		api_problem(r, 400, "Bad Request", "map_index must be an integer");
		return;
	}
	if (!find_run(r, &run))
		return;
	if (store_ti_get(api_store(r), run.pk, task, (int)map_index, &ti) == 0) {
		api_reply(r, 200, api_task_instance(&ti, &run));
		ti_row_free(&ti);
	} else {
		api_problem(r, 404, "Task instance not found", "Task instance %s (map index %ld) of run %s not found",
			    task, map_index, run.run_id);
	}
	run_row_free(&run);
}

const struct route api_dag_run_routes[] = {
	{"GET", "/dags/{dag_id}/dagRuns", ROLE_VIEWER, list_runs},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}", ROLE_VIEWER, get_run},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", ROLE_VIEWER, list_tis},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", ROLE_VIEWER, get_ti},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", ROLE_VIEWER, get_ti},
	{NULL, NULL, ROLE_NONE, NULL},
};
