#include "orchestrator/backfill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/cron.h"
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
