/* Airflow's filters of task instance lists (web/api_ti_list.c fills one from a query string or a
 * ListTaskInstanceForm body): pure matching, no I/O. */
#ifndef SLUICE_WEB_TI_FILTER_H
#define SLUICE_WEB_TI_FILTER_H

#include <stdbool.h>

#include "orchestrator/store.h"

#define TI_FILTER_VALUES 64

/* A repeatable filter (?state=a&state=b, or "state": [...]): empty means any value. */
struct ti_values {
	const char *v[TI_FILTER_VALUES];
	int n;
};

struct ti_range {
	usec_t gte, lte;           /* USEC_NONE = unbounded */
};

struct ti_filter {
	struct ti_values dag_ids, run_ids, task_ids, states, pools, queues, executors;
	struct ti_range execution_date, start_date, end_date, updated_at;
	double duration_gte, duration_lte; /* NAN = unbounded */
	bool mapped_only;          /* listMapped: instances with a map_index */
};

/* Everything unbounded. */
void ti_filter_init(struct ti_filter *f);
/* Whether the run may hold wanted instances (its DAG, its id, its logical date). */
bool ti_filter_run(const struct ti_filter *f, const struct run_row *run);
/* Whether the instance is wanted. A state filter names null as "none" (or "null"); an unset time
 * or duration is outside any bound, as in Airflow's SQL; sluice's one queue is "default". */
bool ti_filter_ti(const struct ti_filter *f, const struct ti_row *t);
/* True when ti_filter_ti() is true for every instance (the filter only picks DAGs and runs). */
bool ti_filter_keeps_every_ti(const struct ti_filter *f);

#endif
