#include "orchestrator/backfill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "orchestrator/cron.h"
#include "orchestrator/dag_lua.h"
#include "orchestrator/tz.h"

int backfill_dates(const struct dag *d, usec_t from, usec_t to, bool backwards, usec_t **out, size_t *n,
		   char **err)
{
	char cerr[256];
	struct cron *c = NULL;
	int64_t t;
	size_t cap = 64;
	*out = NULL;
	*n = 0;
	if (!d->schedule) {
		*err = xasprintf("DAG '%s' has no schedule to backfill", d->dag_id);
		return -EINVAL;
	}
	if (from > to) {
		*err = xstrdup("--from is after --to");
		return -EINVAL;
	}
	c = cron_parse(d->schedule, cerr, sizeof(cerr));
	const struct tz *zone = tz_get(d->timezone, err);
	if (!c || !zone || cron_kind(c) == CRON_ONCE) {
		if (!*err)
			*err = xasprintf("DAG '%s': a backfill needs a periodic schedule, not '%s'", d->dag_id, d->schedule);
		cron_free(c);
		return -EINVAL;
	}
	*out = xmalloc(cap * sizeof(usec_t));
	int64_t after = from / USEC_PER_SEC - 1;
	while (cron_next(c, zone, after, &t) == 0 && t * USEC_PER_SEC <= to) {
		if (*n == BACKFILL_MAX_DATES) {
			*err = xasprintf("more than %d logical dates; split the backfill", BACKFILL_MAX_DATES);
			free(*out);
			*out = NULL;
			*n = 0;
			cron_free(c);
			return -EINVAL;
		}
		if (*n == cap) {
			cap *= 2;
			*out = xrealloc(*out, cap * sizeof(usec_t));
		}
		(*out)[(*n)++] = t * USEC_PER_SEC;
		after = t;
	}
	cron_free(c);
	if (backwards) {
		for (size_t i = 0; i < *n / 2; i++) {
			usec_t x = (*out)[i];
			(*out)[i] = (*out)[*n - 1 - i];
			(*out)[*n - 1 - i] = x;
		}
	}
	return 0;
}

enum bf_action backfill_action(const char *reprocess, int64_t backfill_id, const struct run_row *existing)
{
	if (!existing)
		return BF_CREATE;
	if (existing->backfill_id == backfill_id)
		return BF_SKIP; /* created or reprocessed by this backfill already */
	bool failed = !strcmp(existing->state, "failed");
	bool done = failed || !strcmp(existing->state, "success");
	if ((!strcmp(reprocess, "failed") && failed) || (!strcmp(reprocess, "completed") && done))
		return BF_REPROCESS;
	return BF_SKIP;
}

const char *backfill_action_name(enum bf_action a)
{
	switch (a) {
	case BF_CREATE: return "create";
	case BF_REPROCESS: return "reprocess";
	case BF_SKIP: return "skip";
	}
	return "?";
}

bool backfill_reprocess_valid(const char *s)
{
	return !strcmp(s, "none") || !strcmp(s, "failed") || !strcmp(s, "completed");
}

void backfill_steps_free(struct backfill_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(steps[i].existing_state);
	free(steps);
}

/* Checks the fields of req that need no DAG; -EINVAL with *err. */
static int check_request(const struct backfill_request *req, char **err)
{
	if (!req->from || !req->to) {
		*err = xstrdup("from and to dates are required");
		return -EINVAL;
	}
	if (req->reprocess && !backfill_reprocess_valid(req->reprocess)) {
		*err = xasprintf("reprocess behaviour '%s' is not none, failed or completed", req->reprocess);
		return -EINVAL;
	}
	if (req->max_active_runs < 0) {
		*err = xstrdup("max_active_runs must be at least 1");
		return -EINVAL;
	}
	cJSON *c = req->conf ? cJSON_Parse(req->conf) : NULL;
	bool ok = !req->conf || cJSON_IsObject(c);
	cJSON_Delete(c);
	if (!ok) {
		*err = xstrdup("the runs' conf must be a JSON object");
		return -EINVAL;
	}
	return 0;
}

static void plan_steps(struct store *st, const struct dag *d, const struct backfill_row *b,
		       const usec_t *dates, size_t n, struct backfill_step **steps)
{
	*steps = xcalloc(n ? n : 1, sizeof(**steps));
	for (size_t i = 0; i < n; i++) {
		struct run_row existing = {0};
		bool have = st && store_run_get(st, d->dag_id, NULL, dates[i], &existing) == 0;
		(*steps)[i].logical_date = dates[i];
		(*steps)[i].action = backfill_action(b->reprocess_behavior, -1, have ? &existing : NULL);
		(*steps)[i].existing_state = have ? xstrdup(existing.state) : NULL;
		run_row_free(&existing);
	}
}

int backfill_plan(struct store *st, const struct dag *d, const struct backfill_request *req,
		  struct backfill_row *b, struct backfill_step **steps, size_t *n, char **err)
{
	usec_t *dates = NULL;
	size_t nd = 0;
	int rc = check_request(req, err);
	memset(b, 0, sizeof(*b));
	if (rc < 0)
		return rc;
	b->dag_id = xstrdup(d->dag_id);
	b->reprocess_behavior = xstrdup(req->reprocess ? req->reprocess : "none");
	b->max_active_runs = req->max_active_runs ? req->max_active_runs : 10;
	b->run_backwards = req->run_backwards;
	b->dag_run_conf = xstrdup(req->conf ? req->conf : "{}");
	b->created_at = b->updated_at = now_usec();
	b->completed_at = USEC_NONE;
	if ((rc = dag_parse_date(req->from, d->timezone, &b->from_date, err)) < 0 ||
	    (rc = dag_parse_date(req->to, d->timezone, &b->to_date, err)) < 0 ||
	    (rc = backfill_dates(d, b->from_date, b->to_date, b->run_backwards, &dates, &nd, err)) < 0) {
		backfill_row_free(b);
		return rc < 0 ? -EINVAL : rc;
	}
	if (steps)
		plan_steps(st, d, b, dates, nd, steps);
	if (n)
		*n = nd;
	free(dates);
	return 0;
}

/* Inside the create's transaction: -EEXIST when d has a backfill in progress. */
static int none_in_progress(struct store *w, const char *dag_id, char **err)
{
	struct backfill_row *active = NULL;
	int na = store_backfill_list(w, dag_id, true, &active);
	for (int i = 0; i < na; i++)
		backfill_row_free(&active[i]);
	free(active);
	if (na < 0) {
		*err = xstrdup("cannot read the backfills");
		return na;
	}
	if (na > 0) {
		*err = xasprintf("DAG '%s' already has a backfill in progress", dag_id);
		return -EEXIST;
	}
	return 0;
}

int backfill_create(struct store *w, const struct dag *d, const struct backfill_request *req,
		    struct backfill_row *out, char **err)
{
	int rc = backfill_plan(NULL, d, req, out, NULL, NULL, err);
	if (rc < 0)
		return rc;
	if ((rc = store_begin(w)) < 0) {
		*err = xstrdup("cannot start a database transaction");
		goto fail;
	}
	if ((rc = none_in_progress(w, d->dag_id, err)) < 0)
		goto rollback;
	if (req->dag_source && (rc = store_dag_sync(w, d, req->dag_source, now_usec())) < 0) {
		*err = xasprintf("cannot record DAG '%s'", d->dag_id);
		goto rollback;
	}
	if ((rc = store_backfill_insert(w, out)) < 0) {
		*err = xstrdup("cannot record the backfill");
		goto rollback;
	}
	if ((rc = store_commit(w)) < 0) {
		*err = xstrdup("cannot commit the backfill");
		goto fail;
	}
	return 0;
rollback:
	store_rollback(w);
fail:
	backfill_row_free(out);
	return rc;
}

int backfill_change(struct store *w, int64_t id, enum bf_change what, struct backfill_row *out, char **err)
{
	struct backfill_row b = {0};
	int rc = store_begin(w);
	memset(out, 0, sizeof(*out));
	if (rc < 0) {
		*err = xstrdup("cannot start a database transaction");
		return rc;
	}
	if ((rc = store_backfill_get(w, id, &b)) < 0)
		*err = xasprintf("no backfill %lld", (long long)id);
	else if (b.completed_at != USEC_NONE && (rc = -EALREADY))
		*err = xasprintf("backfill %lld has already completed", (long long)id);
	else if (what == BF_CANCEL && ((rc = store_backfill_update(w, id, b.is_paused, now_usec())) < 0 ||
				       (rc = store_backfill_fail_queued(w, id, now_usec())) < 0))
		*err = xstrdup("cannot cancel the backfill");
	else if (what != BF_CANCEL && (rc = store_backfill_update(w, id, what == BF_PAUSE, USEC_NONE)) < 0)
		*err = xstrdup("cannot update the backfill");
	backfill_row_free(&b);
	if (rc < 0) {
		store_rollback(w);
		return rc;
	}
	if ((rc = store_commit(w)) < 0) {
		*err = xstrdup("cannot commit the change");
		return rc;
	}
	if ((rc = store_backfill_get(w, id, out)) < 0)
		*err = xasprintf("backfill %lld disappeared", (long long)id);
	return rc;
}
