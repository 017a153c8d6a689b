/* JSON in the shapes of Airflow's stable REST API v1 (../shared/reference/airflow-v1.yaml),
 * shared by the CLI's --json output and the REST API. Every function returns a new cJSON tree
 * owned by the caller. */
#ifndef SLUICE_APIJSON_H
#define SLUICE_APIJSON_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "base/json.h"
#include "orchestrator/dag.h"
#include "orchestrator/store.h"

/* Airflow's opaque file token for a DAG file: a hash of its path. */
void api_file_token(const char *fileloc, char out[33]);

struct dag_status {
	bool is_paused, is_active, has_import_errors;
	usec_t last_parsed_time;
	usec_t next_start, next_end; /* the next scheduled interval (USEC_NONE: none) */
};

/* Airflow "DAG". */
cJSON *api_dag(const struct dag *d, const struct dag_status *s);
/* Airflow "DAG" from the daemon's record of it (same fields as api_dag). */
cJSON *api_dag_from_row(const struct dag_row *r);
/* Airflow "DAGDetail" (DAG plus catchup, params, start_date, timezone, ...). */
cJSON *api_dag_detail(const struct dag *d, const struct dag_status *s);
/* Airflow "Task". */
cJSON *api_task(const struct dag *d, const struct task *t);
/* Airflow "DAGRun". */
cJSON *api_dag_run(const struct run_row *r);
/* Appends the same object as JSON text to sb (what api_dag_run() prints as). */
void api_dag_run_write(struct strbuf *sb, const struct run_row *r);
/* Airflow "TaskInstance"; the run supplies execution_date. */
cJSON *api_task_instance(const struct ti_row *t, const struct run_row *r);
/* Appends the same object as JSON text to sb (what api_task_instance() prints as). */
void api_task_instance_write(struct strbuf *sb, const struct ti_row *t, const struct run_row *r);

/* Airflow "TaskInstanceReference": task_id, dag_id, dag_run_id, execution_date. */
cJSON *api_ti_reference(const char *task_id, const struct run_row *run);

/* Airflow 3's "Backfill". */
cJSON *api_backfill(const struct backfill_row *b);

#endif
