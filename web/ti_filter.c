#include "web/ti_filter.h"

#include <math.h>
#include <string.h>

static bool any_of(const struct ti_values *w, const char *s)
{
	for (int i = 0; i < w->n; i++)
		if (s && !strcmp(w->v[i], s))
			return true;
	return w->n == 0;
}

/* Unset times are outside any bound, as in Airflow's SQL. */
static bool in_range(const struct ti_range *r, usec_t t)
{
	if (r->gte != USEC_NONE && (t == USEC_NONE || t < r->gte))
		return false;
	return r->lte == USEC_NONE || (t != USEC_NONE && t <= r->lte);
}

bool ti_filter_run(const struct ti_filter *f, const struct run_row *run)
{
	return any_of(&f->dag_ids, run->dag_id) && any_of(&f->run_ids, run->run_id) &&
	       in_range(&f->execution_date, run->logical_date);
}

bool ti_filter_ti(const struct ti_filter *f, const struct ti_row *t)
{
	/* Airflow names the state of an instance that has none "none" in filters (null in replies). */
	const char *state = t->state && strcmp(t->state, "none") ? t->state : "none";
	bool state_ok = any_of(&f->states, state) || (!strcmp(state, "none") && any_of(&f->states, "null"));
	if (!isnan(f->duration_gte) && (t->duration < 0 || t->duration < f->duration_gte))
		return false;
	if (!isnan(f->duration_lte) && (t->duration < 0 || t->duration > f->duration_lte))
		return false;
	/* sluice has one queue, Airflow's default one. */
	return state_ok && (!f->mapped_only || t->map_index >= 0) && any_of(&f->task_ids, t->task_id) &&
	       any_of(&f->pools, t->pool ? t->pool : "default_pool") && any_of(&f->queues, "default") &&
	       any_of(&f->executors, t->executor) && in_range(&f->start_date, t->start_date) &&
	       in_range(&f->end_date, t->end_date) && in_range(&f->updated_at, t->updated_at);
}

static bool unbounded(const struct ti_range *r) { return r->gte == USEC_NONE && r->lte == USEC_NONE; }

bool ti_filter_keeps_every_ti(const struct ti_filter *f)
{
	return !f->task_ids.n && !f->states.n && !f->pools.n && !f->queues.n && !f->executors.n &&
	       unbounded(&f->start_date) && unbounded(&f->end_date) && unbounded(&f->updated_at) &&
	       isnan(f->duration_gte) && isnan(f->duration_lte) && !f->mapped_only;
}

void ti_filter_init(struct ti_filter *f)
{
	memset(f, 0, sizeof(*f));
	struct ti_range none = {USEC_NONE, USEC_NONE};
	f->execution_date = f->start_date = f->end_date = f->updated_at = none;
	f->duration_gte = f->duration_lte = NAN;
}

