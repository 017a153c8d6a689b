/* The JSON bodies of the API's run and task-instance routes, read into plain structs: pure
 * functions (no request, no I/O), so that the handlers and the fuzz target (tests/fuzz/
 * fuzz_json.c) run the same code. Strings in the outputs are borrowed from the cJSON tree; every
 * function returns 0, or -EINVAL with *err set (malloc'd, the 400's detail; caller frees). */
#ifndef SLUICE_WEB_BODIES_H
#define SLUICE_WEB_BODIES_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "orchestrator/runs.h"
#include "web/ti_filter.h"

/* POST /dags/{dag_id}/dagRuns (Airflow's DAGRun): fills *req (run_type "manual") and *conf_text
 * (the conf object printed, malloc'd, NULL when absent); req->conf points to *conf_text. The
 * caller then checks req with runs_check(). */
int body_trigger(const cJSON *body, struct run_request *req, char **conf_text, char **err);

/* POST /dags/~/dagRuns/~/taskInstances/list (ListTaskInstanceForm): fills *f. */
int body_ti_filter(const cJSON *body, struct ti_filter *f, char **err);

/* POST /dags/{dag_id}/clearTaskInstances (ClearTaskInstances). */
struct body_clear {
	const char *run_id;        /* NULL: every run within [from, to] */
	usec_t from, to;           /* start_date, end_date (USEC_NONE = unbounded) */
	const cJSON *task_ids;     /* an array (its strings name tasks) or NULL: every task */
	bool dry_run, upstream, downstream, only_failed, only_running;
};
int body_clear_tis(const cJSON *body, struct body_clear *out, char **err);

/* POST /dags/{dag_id}/updateTaskInstancesState (UpdateTaskInstancesState). */
struct body_mark {
	const char *task_id, *state;
	const char *run_id;        /* NULL: the run is named by its execution_date */
	bool has_date;             /* run_id NULL and execution_date is an ISO 8601 time: in when */
	usec_t when;
	bool dry_run, upstream, downstream;
};
int body_update_tis(const cJSON *body, struct body_mark *out, char **err);

#endif
